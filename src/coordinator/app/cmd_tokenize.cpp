// `shardquant tokenize --tokenizer PATH [--no-special]`: one JSON string per stdin line in,
// one JSON array of ids per stdout line out. Lines that are not JSON strings are an InputError
// naming the line number, so a calibration file with a stray line fails loudly.
// `--file F` instead encodes the whole raw file as one text (one output line); with `--stats`
// it also prints the encode throughput to stderr (bench/tokenizer_bench.sh uses this).
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "coordinator/app/commands.h"
#include "io/tokenizer/tokenizer.h"

namespace sq::coordinator {

namespace po = boost::program_options;

int cmd_tokenize(const std::vector<std::string>& args) {
  po::options_description desc("shardquant tokenize options");
  std::string path;
  desc.add_options()("help,h", "show this help")("tokenizer", po::value<std::string>(&path),
                                                 "tokenizer.json file or model directory")(
      "no-special", "do not add the post-processor's special tokens (BOS/EOS)")(
      "file", po::value<std::string>(), "encode this whole raw text file instead of stdin lines")(
      "stats", "with --file: print encode throughput (best of 3 runs) as JSON to stderr")(
      "lines", "with --file --stats: time one encode call per line instead of one per file");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    SQ_THROW(InputError, "shardquant tokenize: " << e.what());
  }
  if (vm.count("help")) {
    std::cout << "usage: shardquant tokenize --tokenizer PATH [--no-special] < lines.jsonl\n"
              << desc;
    return 0;
  }
  SQ_REQUIRE(!path.empty(), "shardquant tokenize: --tokenizer PATH is required");
  const bool special = vm.count("no-special") == 0;
  auto tok = io::Tokenizer::load(path);

  auto print_ids = [](const std::vector<int32_t>& ids) {
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::cout << out;
  };
  if (vm.count("file")) {
    const std::string file = vm["file"].as<std::string>();
    std::ifstream in(file, std::ios::binary);
    SQ_REQUIRE(in, "shardquant tokenize: cannot open --file " << file);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::vector<int32_t> ids;
    double best = 1e30;
    for (int rep = 0; rep < (vm.count("stats") ? 3 : 1); ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      if (vm.count("lines")) {
        ids.clear();
        size_t start = 0;
        for (size_t nl; start < text.size(); start = nl + 1) {
          nl = text.find('\n', start);
          if (nl == std::string::npos) nl = text.size();
          auto part = tok->encode(std::string_view(text).substr(start, nl - start), special);
          ids.insert(ids.end(), part.begin(), part.end());
        }
      } else {
        ids = tok->encode(text, special);
      }
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    print_ids(ids);
    if (vm.count("stats"))
      std::cerr << "{\"bytes\":" << text.size() << ",\"tokens\":" << ids.size()
                << ",\"seconds\":" << best << ",\"mb_per_s\":" << text.size() / best / 1e6 << "}\n";
    return 0;
  }

  std::ios::sync_with_stdio(false);
  std::string line;
  for (size_t lineno = 1; std::getline(std::cin, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      SQ_THROW(InputError,
               "shardquant tokenize: stdin line " << lineno << " is not JSON: " << e.what());
    }
    SQ_REQUIRE(j.is_string(), "shardquant tokenize: stdin line "
                                  << lineno << " must be a JSON string, got " << j.type_name());
    print_ids(tok->encode(j.get_ref<const std::string&>(), special));
  }
  std::cout.flush();
  return 0;
}

}  // namespace sq::coordinator
