#include "rank/transport/transport_fault.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "common/check.h"
#include "common/errors.h"

namespace sq::rank {
namespace {

constexpr const char* kEnv = "SHARDQUANT_FAULT";

struct FaultSpec {
  std::string rank = "*";
  std::string step;
  std::string mode = "throw";
  int code = 4;
};

FaultSpec parse(const std::string& text) {
  FaultSpec spec;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    SQ_REQUIRE(eq != std::string::npos,
               kEnv << "=\"" << text << "\": expected key=value items, got '" << item << "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "rank") {
      spec.rank = value;
    } else if (key == "step") {
      spec.step = value;
    } else if (key == "mode") {
      SQ_REQUIRE(value == "throw" || value == "hang" || value == "kill",
                 kEnv << ": mode must be throw, hang or kill, got '" << value << "'");
      spec.mode = value;
    } else if (key == "code") {
      SQ_REQUIRE(value == "2" || value == "3" || value == "4",
                 kEnv << ": code must be 2, 3 or 4, got '" << value << "'");
      spec.code = std::stoi(value);
    } else {
      SQ_REQUIRE(false, kEnv << ": unknown key '" << key << "' (rank, step, mode, code)");
    }
  }
  SQ_REQUIRE(!spec.step.empty(), kEnv << "=\"" << text << "\": step=<name> is required");
  return spec;
}

}  // namespace

void fault_point(int rank, const std::string& step) {
  const char* env = std::getenv(kEnv);
  if (env == nullptr || *env == '\0') return;
  const FaultSpec spec = parse(env);
  if (spec.step != step) return;
  if (spec.rank != "*" && spec.rank != std::to_string(rank)) return;
  if (spec.mode == "hang") {
    // Never returns: the other ranks must time out and abort the job (which kills this one).
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (spec.mode == "kill") {
    // Dies as a rank killed by the OOM killer or an operator would: no message, no cleanup.
    ::kill(::getpid(), SIGKILL);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::ostringstream msg;
  msg << "fault injected by " << kEnv << " on rank " << rank << " at step '" << step << "'";
  if (spec.code == 2) throw InputError(msg.str());
  if (spec.code == 3) throw BackendError(msg.str());
  throw InternalError(msg.str());
}

}  // namespace sq::rank
