// `shardquant eval --model DIR --text FILE [--seq_len 512] [--max-windows N] [--device
// cpu|cuda|auto] [--dtype fp32|bf16|fp16] [--low-memory] [--batch N]`: perplexity with the
// protocol of REFERENCE.md §7 (rank/eval/eval.h). Prints one JSON line, then one line for humans.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "coordinator/app/commands.h"
#include "coordinator/run/run_support.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/tokenizer/tokenizer.h"
#include "rank/device/device.h"
#include "rank/eval/eval.h"
#include "rank/model/arch_table.h"

namespace sq::coordinator {
namespace {

namespace po = boost::program_options;

struct DtypeRow {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeRow kDtypes[] = {{"fp32", at::kFloat},    {"float32", at::kFloat},
                                {"bf16", at::kBFloat16}, {"bfloat16", at::kBFloat16},
                                {"fp16", at::kHalf},     {"float16", at::kHalf}};

at::ScalarType parse_dtype(const std::string& s) {
  for (const auto& r : kDtypes)
    if (s == r.name) return r.type;
  SQ_THROW(InputError, "shardquant eval: --dtype must be fp32, bf16 or fp16, got \"" << s << "\"");
}

at::Device parse_device(const std::string& s) {
  if (s == "cpu") return at::kCPU;
  if (s == "auto") return rank::pick_device(false);
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    SQ_REQUIRE(rank::cuda_available(),
               "shardquant eval: --device " << s << " but CUDA is not available");
    return at::Device(s);
  }
  SQ_THROW(InputError, "shardquant eval: --device must be cpu, cuda or auto, got \"" << s << "\"");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SQ_REQUIRE(in, "shardquant eval: cannot read --text " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int cmd_eval(const std::vector<std::string>& args) {
  po::options_description desc("shardquant eval options");
  std::string model_dir, text, device_s = "auto", dtype_s;
  rank::EvalOptions opts;
  desc.add_options()("help,h", "show this help")("model", po::value<std::string>(&model_dir),
                                                 "model directory (config.json, safetensors)")(
      "text", po::value<std::string>(&text), "plain-text file to evaluate")(
      "seq_len", po::value<int64_t>(&opts.seq_len), "window length (default 512)")(
      "seq-len", po::value<int64_t>(), "alias of --seq_len")(
      "max-windows", po::value<int64_t>(&opts.max_windows), "evaluate at most N windows")(
      "max_windows", po::value<int64_t>(), "alias of --max-windows")(
      "batch", po::value<int64_t>(&opts.batch), "windows per forward (default 4)")(
      "device", po::value<std::string>(&device_s), "cpu, cuda or auto (default auto)")(
      "dtype", po::value<std::string>(&dtype_s),
      "fp32, bf16 or fp16 (default fp32 on CPU, fp16 on CUDA)")(
      "low-memory", "stream one block at a time over all windows");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    SQ_THROW(InputError, "shardquant eval: " << e.what());
  }
  if (vm.count("help")) {
    std::cout << "usage: shardquant eval --model DIR --text FILE [options]\n" << desc;
    return 0;
  }
  if (vm.count("seq-len")) opts.seq_len = vm["seq-len"].as<int64_t>();
  if (vm.count("max_windows")) opts.max_windows = vm["max_windows"].as<int64_t>();
  opts.low_memory = vm.count("low-memory") != 0;
  SQ_REQUIRE(!model_dir.empty(), "shardquant eval: --model DIR is required");
  SQ_REQUIRE(!text.empty(), "shardquant eval: --text FILE is required");
  const at::Device device = parse_device(device_s);
  prepare_host_for(device);
  const at::ScalarType dtype =
      dtype_s.empty() ? (device.is_cuda() ? at::kHalf : at::kFloat) : parse_dtype(dtype_s);

  const auto t0 = std::chrono::steady_clock::now();
  auto cfg = rank::load_model_config(model_dir);
  io::ModelWeights w(model_dir);
  auto tok = io::Tokenizer::load(model_dir);
  const auto ids = tok->encode(read_file(text), /*add_special_tokens=*/false);
  const double tok_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rank::Model model(w, cfg, device, dtype);
  auto r = rank::evaluate_perplexity(model, ids, opts);

  nlohmann::json j = {{"ppl", r.ppl},           {"mean_nll", r.mean_nll},
                      {"tokens", r.tokens},     {"text_tokens", ids.size()},
                      {"windows", r.windows},   {"seq_len", opts.seq_len},
                      {"device", device.str()}, {"dtype", std::string(c10::toString(dtype))},
                      {"seconds", r.seconds},   {"tokenize_seconds", tok_s}};
  std::cout << j.dump() << "\n";
  char line[256];
  std::snprintf(line, sizeof(line),
                "perplexity %.2f over %lld tokens (%lld windows of %lld) in %.1f s on %s\n", r.ppl,
                static_cast<long long>(r.tokens), static_cast<long long>(r.windows),
                static_cast<long long>(opts.seq_len), r.seconds, device.str().c_str());
  std::cout << line;
  return 0;
}

}  // namespace sq::coordinator
