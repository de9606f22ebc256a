// sq_quality_quant — the quality bench's helper for cells the CLI cannot write as a packed
// checkpoint: RTN baselines (no calibration) and AWQ at bit widths AWQ GEMM cannot store (w3).
// It writes a *fake-quantized* full-precision checkpoint: every quantized linear's weight is the
// solver's float32 dequantized weight (exact), every other tensor as the block holds it (AWQ
// rescales norms) in its checkpoint dtype; config.json and tokenizer files are copied unchanged,
// so `shardquant eval` measures exactly the quantized model.
//
// usage: sq_quality_quant rtn|awq|gptq BITS OUT_DIR -- <shardquant options>
//        sq_quality_quant calib 0 OUT_DIR -- <shardquant options>
//   calib: writes only the calibration token ids the options select (OUT_DIR/calib_tokens.i64,
//   int64 little-endian [n, T] row-major, and calib_tokens.json with n, T and the provenance), so
//   an independent implementation (bench/peer/) can calibrate on exactly the same windows.
//   The shardquant options (model, calibration, group size, zero point, seed …) are parsed by the
//   real option parser with a bit width it accepts; BITS then replaces it.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/check.h"
#include "common/errors.h"
#include "coordinator/options/options.h"
#include "coordinator/run/run_support.h"
#include "io/calib/calib.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/output/output_dir.h"
#include "io/output/safetensors_writer.h"
#include "io/tokenizer/tokenizer.h"
#include "rank/model/model.h"
#include "rank/quant/block_export.h"
#include "rank/quant/block_quant.h"
#include "solvers/quant_grid.h"

namespace fs = std::filesystem;
using namespace sq;

namespace {

// RTN on the AWQ grid (zero point as configured), no calibration, no scaling.
rank::BlockQuantResult rtn_block(rank::Block& block, const coordinator::Options& o) {
  rank::BlockQuantResult res;
  for (const auto& name : block.linear_names()) {
    rank::Linear& l = block.linear(name);
    solvers::QuantizedLinear q =
        solvers::quantize_rtn(l.weight, o.scheme(), solvers::GridKind::kAwq, name);
    l.weight = q.dequant.to(l.weight.scalar_type());
    res.quantized[name] = q;
  }
  return res;
}

// The calibration ids for bench/peer/ (see the usage above); padded rows would need the mask, so
// only full rows are accepted.
int write_calib(const std::string& out_dir, const io::CalibSet& calib) {
  SQ_REQUIRE(calib.mask.all().item<bool>(), "calib: padded calibration rows are not supported");
  fs::create_directories(out_dir);
  const at::Tensor t = calib.tokens.to(at::kCPU).to(at::kLong).contiguous();
  std::ofstream f(out_dir + "/calib_tokens.i64", std::ios::binary);
  f.write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.numel() * sizeof(int64_t)));
  f.close();  // a write error can surface only when the buffer is flushed
  SQ_REQUIRE(f.good(), "calib: cannot write " << out_dir << "/calib_tokens.i64");
  nlohmann::json j{{"n", t.size(0)}, {"T", t.size(1)}, {"provenance", calib.provenance}};
  std::ofstream(out_dir + "/calib_tokens.json") << j.dump(1) << "\n";
  std::cerr << "wrote " << t.size(0) << " x " << t.size(1) << " calibration ids to " << out_dir
            << "\n";
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 5 || std::string(argv[4]) != "--") {
    std::cerr
        << "usage: sq_quality_quant rtn|awq|gptq|calib BITS OUT_DIR -- <shardquant options>\n";
    return 2;
  }
  const std::string mode = argv[1], out_dir = argv[3];
  const int bits = std::stoi(argv[2]);
  std::vector<std::string> args(argv + 5, argv + argc);
  args.push_back(mode == "gptq" ? "--gptq" : "--awq");
  args.push_back("--output_dir");
  args.push_back(out_dir);
  coordinator::Options o = coordinator::parse_options(args, {}).options;
  o.bits = bits;

  const at::Device dev = coordinator::run_device(o);
  coordinator::prepare_host_for(dev);  // as the CLI does (CPU: large blocks stay in the heap)
  io::ModelWeights w(o.model_path);
  const io::ModelConfig cfg = io::load_model_config(o.model_path);
  const at::ScalarType dtype = coordinator::compute_dtype(dev, cfg, o.compute_dtype);
  at::Tensor x, mask;
  int64_t mb = 1;
  if (mode != "rtn") {
    auto tok = io::Tokenizer::load(o.model_path);
    const io::CalibSet calib = io::build_calibration(coordinator::calib_options(o), *tok);
    const int64_t n = calib.tokens.size(0), T = calib.tokens.size(1);
    if (mode == "calib") return write_calib(out_dir, calib);
    if (!calib.mask.all().item<bool>()) mask = calib.mask.to(dev);
    mb = coordinator::micro_batch_for(o, T);
    rank::Model model(w, cfg, dev, dtype);  // only its embedding is used
    x = model.embed(calib.tokens.to(dev), rank::make_context(n, T, dev));
    std::cerr << "calibration: " << n << " x " << T << "\n";
  }

  io::OutputDir out(out_dir, o.model_path);
  io::ShardedWriter writer(out.partial_path(), o.max_shard_size_bytes);
  for (const auto& name : w.names())
    if (name.rfind("model.layers.", 0) != 0) writer.add(name, w.get(name));
  const rank::KeepFp keep_none = [](const std::string&) { return false; };
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    rank::Block block(w, cfg, i, dev, dtype);
    rank::BlockQuantResult res =
        mode == "rtn"   ? rtn_block(block, o)
        : mode == "awq" ? rank::awq_quantize_block(block, x, mask, cfg, w,
                                                   coordinator::awq_settings(o, mb), keep_none)
                        : rank::gptq_quantize_block(block, x, mask, cfg, w,
                                                    coordinator::gptq_settings(o, mb), keep_none);
    if (mode != "rtn") x = res.next_input;
    // Every block tensor as the block holds it, then the quantized linears' exact float32 weights.
    const std::map<std::string, solvers::QuantizedLinear> none;
    for (auto& [name, t] : rank::export_block(block, none, w, {})) {
      const std::string base = name.substr(0, name.rfind('.'));
      auto q = res.quantized.find(base);
      const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
      if (is_weight && q != res.quantized.end())
        writer.add(name, q->second.dequant.to(at::kCPU).to(at::kFloat).contiguous());
      else
        writer.add(name, t);
    }
    std::cerr << "block " << i + 1 << "/" << cfg.num_hidden_layers << " (" << res.quantized.size()
              << " linears)\n";
  }
  writer.finish();
  out.write_json("config.json", io::read_json_file(o.model_path + "/config.json"));
  out.copy_aux_files();
  out.commit();
  std::cerr << "wrote " << out_dir << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const sq::Error& e) {
    std::cerr << "sq_quality_quant: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sq_quality_quant: " << e.what() << "\n";
    return 4;
  }
}
