// The local transport contract (one process) and the transport-independent pieces: kind
// parsing, Status agreement semantics, agreed steps and fault injection.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>

#include "common/errors.h"
#include "common/interrupt.h"
#include "rank/transport/transport.h"
#include "rank/transport/transport_fault.h"

namespace sq::rank {
namespace {

std::unique_ptr<Transport> local() {
  return make_transport(TransportKind::kLocal, {});
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(TransportLocal, IdentityAndWorldOfOne) {
  auto t = local();
  EXPECT_EQ(t->rank(), 0);
  EXPECT_EQ(t->world(), 1);
  EXPECT_EQ(t->local_rank(), 0);
  EXPECT_STREQ(t->name(), "local");
  EXPECT_TRUE(t->device().is_cpu());
  for (auto type : {at::kFloat, at::kDouble, at::kLong}) {
    at::Tensor x = at::arange(12, at::TensorOptions().dtype(type)).reshape({3, 4});
    const at::Tensor before = x.clone();
    t->all_reduce_sum(x);
    EXPECT_TRUE(at::equal(x, before)) << type;
    t->broadcast(x, 0);
    EXPECT_TRUE(at::equal(x, before)) << type;
  }
  EXPECT_EQ(t->gather_bytes("abc", 0), std::vector<std::string>{"abc"});
  std::string bytes("payload\0with nul", 16);
  t->broadcast_bytes(bytes, 0);
  EXPECT_EQ(bytes.size(), 16u);
  t->barrier();
  EXPECT_TRUE(t->healthy());
}

TEST(TransportLocal, MisuseNamesTheProblem) {
  auto t = local();
  at::Tensor x = at::zeros({4});
  try {
    t->send(x, 0, 7);
    FAIL() << "send to self must throw";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("send(dst=0, tag=7)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t->recv(x, 0, 7), InternalError);
  EXPECT_THROW(t->broadcast(x, 1), InternalError);
  at::Tensor h = at::zeros({4}, at::kHalf);
  try {
    t->all_reduce_sum(h);
    FAIL() << "half all_reduce_sum must throw";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("Half"), std::string::npos) << e.what();
  }
}

TEST(TransportKinds, ParseAndDefaults) {
  EXPECT_EQ(parse_transport_kind("local"), TransportKind::kLocal);
  EXPECT_THROW(parse_transport_kind("gloo"), InputError);
  EXPECT_STREQ(transport_kind_name(TransportKind::kNccl), "nccl");
  // Without GPUs the default is never nccl.
  EXPECT_NE(default_transport_kind(false), TransportKind::kNccl);
  if (!transport_kind_built(TransportKind::kNccl)) {
    EXPECT_THROW(parse_transport_kind("nccl"), InputError);
    EXPECT_THROW(make_transport(TransportKind::kNccl, {}), InputError);
    EXPECT_EQ(default_transport_kind(true), default_transport_kind(false));
  }
  TransportOptions bad;
  bad.timeout_s = 0;
  EXPECT_THROW(make_transport(TransportKind::kLocal, bad), InputError);
}

TEST(TransportStatus, AgreeAndRaiseKeepClassAndRank) {
  auto t = local();
  EXPECT_TRUE(t->agree(Status::ok()).is_ok());
  const Status failed = Status::from_exception(BackendError("disk full at out/x"), 0);
  const Status agreed = t->agree(failed);
  EXPECT_EQ(agreed.code, 3);
  EXPECT_EQ(agreed.rank, 0);
  EXPECT_EQ(agreed.failed_ranks, 1);
  EXPECT_EQ(agreed.message, "disk full at out/x");
  try {
    agreed.raise("write");
    FAIL() << "raise must throw";
  } catch (const BackendError& e) {
    EXPECT_TRUE(all_ranks_know(e));
    EXPECT_EQ(std::string(e.what()), "rank 0 failed in step 'write': disk full at out/x");
  }
  EXPECT_FALSE(all_ranks_know(BackendError("x")));
  // Non-sq exceptions are internal errors.
  EXPECT_EQ(Status::from_exception(std::runtime_error("boom"), 0).code, 4);
}

TEST(TransportStatus, AnInterruptionIsRaisedAsInterruptedWithItsExitCode) {
  auto t = local();
  const Status mine = Status::from_exception(
      sq::Interrupted("SIGTERM: interrupted after block 2 of 6", SIGTERM), 0);
  EXPECT_EQ(mine.code, 128 + SIGTERM);
  const Status agreed = t->agree(mine);
  try {
    agreed.raise("quantize");
    FAIL() << "raise must throw";
  } catch (const sq::Interrupted& e) {
    EXPECT_TRUE(all_ranks_know(e));
    EXPECT_EQ(sq::exit_code_for(e), 143);
    EXPECT_EQ(std::string(e.what()),
              "rank 0 stopped in step 'quantize': SIGTERM: interrupted after block 2 of 6");
  }
}

TEST(TransportStatus, AgreedStepPropagatesFailureAndFault) {
  auto t = local();
  int calls = 0;
  agreed_step(*t, "plan", [&] { ++calls; });
  EXPECT_EQ(calls, 1);
  try {
    agreed_step(*t, "plan", [] { throw InputError("bad flag --w-bit 5"); });
    FAIL();
  } catch (const InputError& e) {
    // One rank (transport.h): nobody to agree with, the step's own exception propagates
    // unchanged — same class, same message, not marked as agreed.
    EXPECT_FALSE(all_ranks_know(e));
    EXPECT_EQ(std::string(e.what()), "bad flag --w-bit 5");
  }
  ScopedEnv env("SHARDQUANT_FAULT", "rank=0,step=after_plan,code=3");
  try {
    agreed_step(*t, "plan", [&] { ++calls; });
    FAIL() << "fault must fire";
  } catch (const BackendError& e) {
    EXPECT_EQ(calls, 2);  // the fault fires after the step body
    EXPECT_NE(std::string(e.what()).find("on rank 0 at step 'after_plan'"), std::string::npos)
        << e.what();
  }
  agreed_step(*t, "load", [] {});  // other steps are unaffected
}

// Rank 0 of a two-rank job whose collectives are never used: agree() is counted and answers
// with this rank's own status; `broken` plays a transport left unhealthy by a timeout or a dead
// peer.
class TwoRankStub final : public Transport {
 public:
  int rank() const override { return 0; }
  int world() const override { return 2; }
  int local_rank() const override { return 0; }
  const char* name() const override { return "stub"; }
  void all_reduce_sum(at::Tensor&) override { ADD_FAILURE(); }
  void broadcast(at::Tensor&, int) override { ADD_FAILURE(); }
  void send(const at::Tensor&, int, int) override { ADD_FAILURE(); }
  void recv(at::Tensor&, int, int) override { ADD_FAILURE(); }
  std::vector<std::string> gather_bytes(const std::string&, int) override {
    ADD_FAILURE();
    return {};
  }
  void broadcast_bytes(std::string&, int) override { ADD_FAILURE(); }
  void barrier() override { ADD_FAILURE(); }
  Status agree(const Status& mine) override {
    ++agrees;
    Status s = mine;
    if (!s.is_ok()) s.rank = 0;
    return s;
  }
  bool healthy() const override { return !broken; }
  int agrees = 0;
  bool broken = false;
};

TEST(TransportStatus, AgreedStepDoesNotAgreeOverABrokenTransport) {
  TwoRankStub t;
  try {
    agreed_step(t, "solve", [] { throw InputError("bad block"); });
    FAIL();
  } catch (const InputError& e) {
    EXPECT_TRUE(all_ranks_know(e));  // a healthy transport agrees
    EXPECT_EQ(t.agrees, 1);
  }
  try {
    agreed_step(t, "solve", [&] {
      t.broken = true;
      throw BackendError("mpi rank 0/2: recv (rank 1 tag 3): rank 1 (pid 7) died");
    });
    FAIL();
  } catch (const BackendError& e) {
    // Unchanged and not agreed: the caller aborts the job with this message.
    EXPECT_FALSE(all_ranks_know(e));
    EXPECT_EQ(std::string(e.what()), "mpi rank 0/2: recv (rank 1 tag 3): rank 1 (pid 7) died");
    EXPECT_EQ(t.agrees, 1);
  }
}

TEST(TransportFault, SpecParsing) {
  {
    ScopedEnv env("SHARDQUANT_FAULT", "rank=1,step=after_plan");
    EXPECT_NO_THROW(fault_point(0, "after_plan"));  // other rank
    EXPECT_NO_THROW(fault_point(1, "before_plan"));
    EXPECT_THROW(fault_point(1, "after_plan"), InternalError);
  }
  {
    ScopedEnv env("SHARDQUANT_FAULT", "rank=*,step=x,code=2");
    EXPECT_THROW(fault_point(5, "x"), InputError);
  }
  {
    ScopedEnv env("SHARDQUANT_FAULT", "rank=1,mode=explode,step=x");
    EXPECT_THROW(fault_point(1, "x"), InputError);
  }
  {
    ScopedEnv env("SHARDQUANT_FAULT", "rank=1");
    EXPECT_THROW(fault_point(1, "x"), InputError);
  }
  EXPECT_NO_THROW(fault_point(1, "after_plan"));
}

}  // namespace
}  // namespace sq::rank
