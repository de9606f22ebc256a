// Unit tests of the option table, parsing, env precedence and validation (no subprocess).
#include <gtest/gtest.h>

#include "common/errors.h"
#include "coordinator/options/options.h"
#include "coordinator/options/options_table.h"
#include "coordinator/run/run_support.h"
#include "io/calib/calib.h"

namespace sq::coordinator {
namespace {

using Env = std::map<std::string, std::string>;

Options parse(const std::vector<std::string>& args, const Env& env = {}) {
  auto r = parse_options(args, env);
  EXPECT_EQ(r.outcome, ParseOutcome::kRun);
  return r.options;
}

TEST(OptionsTable, CanonicalNamesAreSnakeCaseAndUnique) {
  std::set<std::string> seen;
  for (const auto& r : table::flags()) {
    const std::string n = r.name;
    EXPECT_TRUE(seen.insert(n).second) << n;
    EXPECT_EQ(n.find('-'), std::string::npos) << n;
    EXPECT_TRUE(r.help && *r.help) << n;
  }
  for (const auto& e : table::envs()) EXPECT_NE(table::find_flag(e.flag), nullptr) << e.env;
  for (const auto& p : table::max_quality_presets())
    EXPECT_NE(table::find_flag(p.flag), nullptr) << p.flag;
  for (const auto& g : table::exclusions())
    for (const char* f : g.flags) EXPECT_NE(table::find_flag(f), nullptr) << f;
  for (const auto& m : table::methods())
    for (const char* f : m.only_flags) EXPECT_NE(table::find_flag(f), nullptr) << f;
}

TEST(Options, Defaults) {
  const Options o = parse({"--model_path", "/m/"});
  EXPECT_EQ(o.model_path, "/m");
  EXPECT_EQ(o.method, Method::kAwq);
  EXPECT_EQ(o.bits, 4);
  EXPECT_EQ(o.group_size, 128);
  EXPECT_TRUE(o.zero_point);
  EXPECT_EQ(o.seq_len, 2048);
  EXPECT_EQ(o.calib_size, 128);
  EXPECT_EQ(o.iter, 1);
  EXPECT_EQ(o.search_step, 1);
  EXPECT_DOUBLE_EQ(o.salient_quota, 0.004);
  EXPECT_DOUBLE_EQ(o.damp_percent, 0.01);
  EXPECT_EQ(o.n_grid, 20);
  EXPECT_EQ(o.clip_tokens, 512);
  EXPECT_DOUBLE_EQ(o.mse, 0.0);
  EXPECT_EQ(o.comm_timeout_s, 600);
  EXPECT_EQ(o.max_shard_size_bytes, 5000000000ull);
  EXPECT_TRUE(o.true_sequential);
  EXPECT_EQ(o.propagate, Propagate::kFp);
  EXPECT_EQ(o.format, io::Format::kAwqGemm);
  EXPECT_EQ(o.output_dir, "/m/AWQ-4bit");
  EXPECT_FALSE(o.dry_run);
  EXPECT_EQ(o.explicit_flags, std::vector<std::string>{"model_path"});
}

TEST(Options, GptqDefaults) {
  const Options o = parse({"--model_path", "/m", "--gptq"});
  EXPECT_EQ(o.bits, 8);
  EXPECT_FALSE(o.zero_point);
  EXPECT_EQ(o.propagate, Propagate::kQuant);
  EXPECT_EQ(o.format, io::Format::kGptqV1);
  EXPECT_EQ(o.output_dir, "/m/GPTQ-8bit");
  EXPECT_EQ(parse({"--model_path", "/m", "--method", "gptq", "--zero-point"}).zero_point, true);
}

TEST(Options, BooleanForms) {
  EXPECT_TRUE(parse({"--model_path", "/m", "--force_cpu"}).force_cpu);
  EXPECT_TRUE(parse({"--model_path", "/m", "--force-cpu=yes"}).force_cpu);
  EXPECT_FALSE(parse({"--model_path", "/m", "--force_cpu=false"}).force_cpu);
  EXPECT_FALSE(parse({"--model_path", "/m", "--true-sequential=0", "--gptq"}).true_sequential);
  EXPECT_FALSE(parse({"--model_path", "/m", "--no-clip"}).clip);
  EXPECT_FALSE(parse({"--model_path", "/m", "--no_duo_scaling"}).duo_scaling);
  EXPECT_EQ(parse({"--model_path", "/m", "--verbose"}).verbosity, Verbosity::kVerbose);
  EXPECT_EQ(parse({"--model_path", "/m", "--quiet"}).verbosity, Verbosity::kQuiet);
}

TEST(Options, ValuesAndLists) {
  const Options o = parse({"--model_path", "/m", "--q-group-size", "-1", "--keep-fp-layers",
                           "0, 1,-1", "--max-shard-size", "2GiB", "--gpu_mem_limit=500MB",
                           "--calib-split", "train,valid", "--parallel", "data", "--transport",
                           "mpi", "--format", "compressed-tensors", "--seed", "9"});
  EXPECT_EQ(o.group_size, -1);
  EXPECT_EQ(o.keep_fp_layers, (std::vector<std::string>{"0", "1", "-1"}));
  EXPECT_EQ(o.max_shard_size_bytes, 2ull << 30);
  EXPECT_EQ(o.gpu_mem_limit_bytes, 500000000ull);
  EXPECT_EQ(o.calib_split, (std::vector<std::string>{"train", "valid"}));
  EXPECT_EQ(o.parallel, ParallelMode::kData);
  EXPECT_EQ(o.transport, TransportKind::kMpi);
  EXPECT_EQ(o.format, io::Format::kCompressedPack);
  EXPECT_EQ(o.seed, 9u);
}

TEST(Options, MaxQualityPresetsYieldToExplicitFlags) {
  const Options o = parse({"--model_path", "/m", "--max_quality", "--iter", "3"});
  EXPECT_TRUE(o.force_cpu);
  EXPECT_TRUE(o.desc_act);
  EXPECT_EQ(o.iter, 3);
  EXPECT_EQ(o.search_step, 2);
  EXPECT_EQ(o.keep_fp_layers, (std::vector<std::string>{"0", "1", "-1"}));
  EXPECT_EQ(o.output_dir, "/m/AWQ-4bit-MAX");
  EXPECT_EQ(o.dump_salient, "/m/AWQ-4bit-MAX/outlier.json");
  // --sym given explicitly wins over the preset's zero point (no conflict).
  const Options g = parse({"--model_path", "/m", "--gptq", "--max_quality", "--sym"});
  EXPECT_FALSE(g.zero_point);
}

TEST(Options, EnvPrecedence) {
  const Env env = {{"MODEL_PATH", "/env"}, {"SEQ_LEN", "100"}, {"METHOD", "gptq"},
                   {"BITS", "4"},          {"FORCE_CPU", "1"}, {"EXTRA_ARGS", "--seq_len 200"}};
  const Options o = parse({}, env);
  EXPECT_EQ(o.model_path, "/env");
  EXPECT_EQ(o.seq_len, 200);
  EXPECT_EQ(o.method, Method::kGptq);
  EXPECT_EQ(o.bits, 4);
  EXPECT_TRUE(o.force_cpu);
  const Options c = parse({"--awq", "--seq-len", "300", "--bits", "4"}, env);
  EXPECT_EQ(c.method, Method::kAwq);  // --awq on the command line beats METHOD=gptq
  EXPECT_EQ(c.seq_len, 300);
  EXPECT_TRUE(parse({"--model_path", "/m"}, {{"FORCE_CPU", ""}}).force_cpu == false);
}

TEST(Options, ValidationErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {"--model_path", "/m", "--bits", "8"},                        // AWQ is 4-bit
      {"--model_path", "/m", "--gptq", "--bits", "6"},              // not a GPTQ width
      {"--model_path", "/m", "--q-group-size", "0"},                // -1 or positive
      {"--model_path", "/m", "--awq", "--gptq"},                    // exclusive
      {"--model_path", "/m", "--verbose", "--quiet"},               // exclusive
      {"--model_path", "/m", "--gptq", "--no-clip"},                // AWQ only
      {"--model_path", "/m", "--gptq", "--damp-percent", "0"},      // (0, 1]
      {"--model_path", "/m", "--mse", "2.4"},                       // GPTQ only
      {"--model_path", "/m", "--gptq", "--mse", "-1"},              // [0, 100]
      {"--model_path", "/m", "--gptq", "--clip-tokens", "0"},       // AWQ only
      {"--model_path", "/m", "--clip-tokens", "-5"},                // >= 0
      {"--model_path", "/m", "--gptq", "--iter", "3"},              // AWQ only
      {"--model_path", "/m", "--gptq", "--awq-rounding", "gptq"},   // AWQ only
      {"--model_path", "/m", "--awq-rounding", "best"},             // choices
      {"--model_path", "/m", "--damp-percent", "0.02"},             // AWQ: needs GPTQ rounding
      {"--model_path", "/m", "--salient-quota", "0.01"},            // needs --dump-salient
      {"--model_path", "/m", "--salient-quota", "1.5"},             // [0, 1]
      {"--model_path", "/m", "--seq_len", "0"},                     // >= 1
      {"--model_path", "/m", "--format", "gptq"},                   // AWQ can't fill it
      {"--model_path", "/m", "--parallel", "sideways"},             // choices
      {"--model_path", "/m", "--force_cpu", "--device", "cuda:0"},  // rule
      {"--model_path", "/m", "--calib-cache", "x.bin"},             // rule
      {"--model_path", "/m", "--max-shard-size", "lots"},           // size
      {"--model_path", "/m", "--unknown"},                          // unknown
      {"--model_path", "/m", "extra"},                              // positional
      {"--seq_len", "5"},                                           // no model path
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_THROW(parse_options(args, {}), InputError) << joined;
  }
}

// compressed-tensors' 3-bit packing differs between library versions (options_table.cpp).
TEST(Options, CompressedTensorsRefusesThreeBits) {
  EXPECT_THROW(
      parse_options(
          {"--model_path", "/m", "--gptq", "--bits", "3", "--format", "compressed-tensors"}, {}),
      InputError);
  EXPECT_EQ(parse({"--model_path", "/m", "--gptq", "--bits", "4", "--format", "compressed-tensors"})
                .format,
            io::Format::kCompressedPack);
}

TEST(Options, MseAndClipTokensReachTheSolvers) {
  const Options g = parse({"--model_path", "/m", "--gptq", "--mse=2.4"});
  EXPECT_DOUBLE_EQ(g.scheme().mse_norm, 2.4);
  EXPECT_DOUBLE_EQ(gptq_settings(g, 1).scheme.mse_norm, 2.4);
  EXPECT_EQ(g.scheme().describe(), "w8 g128 symmetric mse 2.4");
  const Options a = parse({"--model_path", "/m", "--clip_tokens", "0"});
  EXPECT_EQ(awq_settings(a, 1).clip_tokens, 0);
  EXPECT_EQ(awq_settings(parse({"--model_path", "/m"}), 1).clip_tokens, 512);
  const Options r = parse({"--model_path", "/m", "--iter", "4", "--search-step", "2"});
  EXPECT_EQ(awq_settings(r, 1).refine.rounds, 4);
  EXPECT_EQ(awq_settings(r, 1).refine.points_per_side, 2);
  // --awq-rounding gptq takes --damp-percent (GPTQ's) and never act order (AWQ GEMM has no g_idx).
  const Options ag =
      parse({"--model_path", "/m", "--awq-rounding=gptq", "--damp_percent", "0.05", "--desc-act"});
  EXPECT_TRUE(awq_settings(ag, 1).gptq_rounding);
  EXPECT_DOUBLE_EQ(awq_settings(ag, 1).gptq.damp_percent, 0.05);
  EXPECT_FALSE(awq_settings(ag, 1).scheme.act_order);
  EXPECT_FALSE(awq_settings(parse({"--model_path", "/m"}), 1).gptq_rounding);
  // --max_quality's AWQ presets do not stop a GPTQ run.
  EXPECT_EQ(parse({"--model_path", "/m", "--gptq", "--max_quality"}).iter, 40);
}

// A row carries its flag's parser: every flag but the actions and the method selectors (read by
// the method resolution) has one, a choice lists its choices, a range can read its field.
TEST(OptionsTable, EveryRowParsesIntoItsField) {
  const std::set<std::string> unbound = {"awq", "gptq", "method", "help", "version"};
  for (const auto& r : table::flags()) {
    EXPECT_EQ(static_cast<bool>(r.set), !unbound.count(r.name)) << r.name;
    EXPECT_EQ(r.choices.empty(), r.kind != table::Kind::kChoice) << r.name;
    if (r.range) EXPECT_TRUE(static_cast<bool>(r.value)) << r.name;
  }
}

// The choices of an enum flag are its value names: each parses to the value to_string() names.
TEST(Options, EnumChoicesRoundTrip) {
  for (const char* f : {"quant", "fp"})
    EXPECT_STREQ(to_string(parse({"--model_path", "/m", "--propagate", f}).propagate), f);
  for (const char* f : {"auto", "blocks", "data"})
    EXPECT_STREQ(to_string(parse({"--model_path", "/m", "--parallel", f}).parallel), f);
  for (const char* f : {"rtn", "gptq"})
    EXPECT_STREQ(to_string(parse({"--model_path", "/m", "--awq-rounding", f}).awq_rounding), f);
  for (const char* f : {"gptq", "compressed-tensors"})
    EXPECT_STREQ(io::cli_name(parse({"--model_path", "/m", "--gptq", "--format", f}).format), f);
  EXPECT_EQ(table::find_flag("format")->choices, "awq|gptq|compressed-tensors");
  // --transport auto (the documented default) is accepted and means "choose".
  EXPECT_EQ(parse({"--model_path", "/m", "--transport", "auto"}).transport, std::nullopt);
  EXPECT_EQ(parse({"--model_path", "/m"}).transport, std::nullopt);
  EXPECT_EQ(parse({"--model_path", "/m", "--transport=local"}).transport, TransportKind::kLocal);
  EXPECT_THROW(parse_options({"--model_path", "/m", "--transport", "gloo"}, {}), InputError);
}

TEST(Options, HelpAndVersionOutcomes) {
  EXPECT_EQ(parse_options({"--help"}, {}).outcome, ParseOutcome::kHelp);
  EXPECT_EQ(parse_options({"--version"}, {}).outcome, ParseOutcome::kVersion);
  EXPECT_EQ(parse_options({"--help-markdown"}, {}).outcome, ParseOutcome::kHelpMarkdown);
}

TEST(ShellSplit, QuotesAndEscapes) {
  EXPECT_EQ(shell_split("  --a 1   --b 'x y' \"p \\\"q\\\"\" z\\ w ''"),
            (std::vector<std::string>{"--a", "1", "--b", "x y", "p \"q\"", "z w", ""}));
  EXPECT_TRUE(shell_split("   ").empty());
  EXPECT_THROW(shell_split("'open"), InputError);
}

TEST(Parsers, SizesAndBools) {
  EXPECT_EQ(parse_size("5GB", "f"), 5000000000ull);
  EXPECT_EQ(parse_size("1.5 KiB", "f"), 1536ull);
  EXPECT_EQ(parse_size("42", "f"), 42ull);
  EXPECT_THROW(parse_size("-1GB", "f"), InputError);
  EXPECT_THROW(parse_size("GB", "f"), InputError);
  EXPECT_TRUE(parse_bool("YES", "x"));
  EXPECT_FALSE(parse_bool("off", "x"));
  EXPECT_THROW(parse_bool("2", "x"), InputError);
}

}  // namespace
}  // namespace sq::coordinator

// --calib-sampling picks the sampler independently of the method; --calib-mix reaches the
// calibration options (auto keeps AutoAWQ texts for AWQ and windows for GPTQ).
TEST(Options, CalibSamplingAndMixReachTheCalibration) {
  using sq::io::CalibMix;
  using sq::io::CalibMode;
  struct Case {
    std::vector<std::string> args;
    CalibMode mode;
    CalibMix mix;
  };
  const Case cases[] = {
      {{"--model_path", "m"}, CalibMode::Awq, CalibMix::Equal},
      {{"--model_path", "m", "--gptq"}, CalibMode::Gptq, CalibMix::Equal},
      {{"--model_path", "m", "--calib-sampling", "windows"}, CalibMode::Gptq, CalibMix::Equal},
      {{"--model_path", "m", "--gptq", "--calib_sampling=texts", "--calib-mix", "proportional"},
       CalibMode::Awq,
       CalibMix::Proportional},
  };
  for (const auto& c : cases) {
    const auto o = sq::coordinator::parse_options(c.args, {}).options;
    const auto co = sq::coordinator::calib_options(o);
    EXPECT_EQ(co.mode, c.mode) << c.args.back();
    EXPECT_EQ(co.mix, c.mix) << c.args.back();
  }
  EXPECT_THROW(
      sq::coordinator::parse_options({"--model_path", "m", "--calib-sampling", "lines"}, {}),
      sq::InputError);
}
