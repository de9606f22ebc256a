// `shardquant tokenize --tokenizer PATH [--no-special]`: one JSON string per stdin line in,
// one JSON array of ids per stdout line out. Lines that are not JSON strings are an InputError
// naming the line number, so a calibration file with a stray line fails loudly.
#include <iostream>
#include <string>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "coordinator/commands.h"
#include "io/tokenizer.h"

namespace sq::coordinator {

namespace po = boost::program_options;

int cmd_tokenize(const std::vector<std::string>& args) {
  po::options_description desc("shardquant tokenize options");
  std::string path;
  desc.add_options()("help,h", "show this help")("tokenizer", po::value<std::string>(&path),
                                                 "tokenizer.json file or model directory")(
      "no-special", "do not add the post-processor's special tokens (BOS/EOS)");
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

  std::ios::sync_with_stdio(false);
  std::string line, out;
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
    const auto ids = tok->encode(j.get_ref<const std::string&>(), special);
    out.assign("[");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::cout << out;
  }
  std::cout.flush();
  return 0;
}

}  // namespace sq::coordinator
