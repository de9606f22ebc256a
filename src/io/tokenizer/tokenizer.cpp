// Tokenizer::load and the encode pipeline: added tokens split out of the raw text, then per
// segment normalizer -> added tokens marked "normalized" -> pre-tokenizer -> BPE, then the
// post-processor template. Invalid UTF-8 input is first repaired like from_utf8_lossy.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/tokenizer/tokenizer_impl.h"
#include "io/tokenizer/unicode.h"

namespace sq::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) SQ_THROW(InputError, "cannot open tokenizer file " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// transformers tokenizer classes whose constructor rebuilds the post-processor from
// tokenizer_config.json's add_bos_token / add_eos_token (defaults: true / false).
const char* const kBosEosClasses[] = {"LlamaTokenizer",     "LlamaTokenizerFast",
                                      "GemmaTokenizer",     "GemmaTokenizerFast",
                                      "CodeLlamaTokenizer", "CodeLlamaTokenizerFast"};

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_word(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  const std::string json_path = is_dir ? (fs::path(path) / "tokenizer.json").string() : path;
  SQ_REQUIRE(fs::is_regular_file(json_path, ec),
             "tokenizer: " << json_path << " does not exist (pass tokenizer.json or a model "
                           << "directory holding it)");
  const std::string cfg = (fs::path(json_path).parent_path() / "tokenizer_config.json").string();
  return std::make_unique<tok::JsonTokenizer>(json_path, cfg, is_dir);
}

namespace tok {

JsonTokenizer::JsonTokenizer(const std::string& json_path, const std::string& config_path,
                             bool apply_config_rules) {
  const std::string text = read_file(json_path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    SQ_THROW(InputError, json_path << ": not valid JSON: " << e.what());
  }
  try {
    const json& model = j.at("model");
    const std::string mtype = model.value("type", "BPE");
    SQ_REQUIRE(mtype == "BPE", json_path << ": unsupported tokenizer model type '" << mtype
                                         << "' (only BPE is implemented)");
    normalizer_ = Normalizer::from_json(j.value("normalizer", json()));
    pre_ = PreTokenizer::from_json(j.value("pre_tokenizer", json()));
    bpe_ = std::make_unique<Bpe>(model, pre_ && pre_->byte_level());
    template_ = template_from_json(j.value("post_processor", json()));
    decoder_ = Decoder::from_json(j.value("decoder", json()));
    vocab_size_ = bpe_->max_id() + 1;
    const json added = j.value("added_tokens", json::array());
    SQ_REQUIRE(added.is_array(), json_path << ": added_tokens must be an array");
    for (size_t i = 0; i < added.size(); ++i) {
      const json& a = added[i];
      AddedToken t{a.at("content").get<std::string>(),
                   checked_token_id(a.at("id"), "added_tokens[" + std::to_string(i) + "].id"),
                   a.value("special", false),
                   a.value("normalized", true),
                   a.value("lstrip", false),
                   a.value("rstrip", false),
                   a.value("single_word", false)};
      if (t.content.empty()) continue;
      const int idx = static_cast<int>(added_.size());
      added_by_id_[t.id] = idx;
      added_by_content_[t.content] = t.id;
      // As the library: normalized=false tokens (special or not) are matched in the raw text;
      // normalized=true ones after normalization, against their own normalized content.
      if (t.normalized) {
        std::string pattern = t.content;
        if (normalizer_) normalizer_->apply(pattern);
        if (!pattern.empty()) norm_matcher_.add(pattern, idx);
      } else {
        raw_matcher_.add(t.content, idx);
      }
      vocab_size_ = std::max<int64_t>(vocab_size_, t.id + 1);
      added_.push_back(std::move(t));
    }
  } catch (const json::exception& e) {
    SQ_THROW(InputError, json_path << ": malformed tokenizer.json: " << e.what());
  }
  std::string cfg_text;
  if (fs::is_regular_file(config_path)) cfg_text = read_file(config_path);
  hash_ = [&] {
    std::ostringstream ss;
    ss << std::hex << std::setw(16) << std::setfill('0') << fnv1a(cfg_text, fnv1a(text));
    return ss.str();
  }();
  bos_ = template_.first_special;
  if (!cfg_text.empty()) {
    try {
      apply_config(json::parse(cfg_text), apply_config_rules);
    } catch (const json::exception& e) {
      SQ_THROW(InputError, config_path << ": malformed tokenizer_config.json: " << e.what());
    }
  }
}

std::optional<int32_t> JsonTokenizer::token_id(const json& tok) const {
  std::string s;
  if (tok.is_string())
    s = tok.get<std::string>();
  else if (tok.is_object() && tok.contains("content"))
    s = tok["content"].get<std::string>();
  else
    return std::nullopt;
  auto it = added_by_content_.find(s);
  if (it != added_by_content_.end()) return it->second;
  return bpe_->token_to_id(s);
}

void JsonTokenizer::apply_config(const json& cfg, bool change_template) {
  if (auto id = token_id(cfg.value("bos_token", json()))) bos_ = id;
  if (auto id = token_id(cfg.value("eos_token", json()))) eos_ = id;
  if (auto id = token_id(cfg.value("pad_token", json()))) pad_ = id;
  if (!change_template) return;
  const std::string cls = cfg.value("tokenizer_class", "");
  for (const char* c : kBosEosClasses) {
    if (cls != c) continue;
    template_.before.clear();
    template_.after.clear();
    if (cfg.value("add_bos_token", true) && bos_) template_.before.push_back(*bos_);
    if (cfg.value("add_eos_token", false) && eos_) template_.after.push_back(*eos_);
  }
}

void AddedMatcher::add(const std::string& content, int index) {
  first_byte_[static_cast<unsigned char>(content[0])] = true;
  int node = 0;
  for (unsigned char c : content) {
    auto& kids = nodes_[node].kids;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(c, -1));
    if (it != kids.end() && it->first == c) {
      node = it->second;
      continue;
    }
    int fresh = static_cast<int>(nodes_.size());
    kids.insert(it, {c, fresh});
    nodes_.emplace_back();
    node = fresh;
  }
  if (nodes_[node].token < 0) nodes_[node].token = index;  // first definition wins
}

int AddedMatcher::longest_at(std::string_view text, size_t pos, size_t& len) const {
  if (!first_byte_[static_cast<unsigned char>(text[pos])]) return -1;
  int node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& kids = nodes_[node].kids;
    unsigned char c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(c, -1));
    if (it == kids.end() || it->first != c) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

// Splits `text` into plain ranges and added tokens (token_at[i] >= 0 marks range i as the
// added token of that index), with the library's single_word / lstrip / rstrip rules.
void JsonTokenizer::split_added(std::string_view text, const AddedMatcher& m, size_t base,
                                std::vector<std::pair<size_t, size_t>>& ranges,
                                std::vector<int>& token_at) const {
  size_t done = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t len = 0;
    int idx = m.empty() ? -1 : m.longest_at(text, pos, len);
    if (idx < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = added_[idx];
    size_t start = pos, stop = pos + len;
    pos = stop;
    if (t.single_word) {
      bool start_ok = start == 0 || !is_word(text[start - 1]);
      bool stop_ok = stop == text.size() || !is_word(text[stop]);
      if (!start_ok || !stop_ok) continue;
    }
    if (t.lstrip) {
      size_t s = start;
      while (s > done && is_ws(text[s - 1])) --s;
      start = s;
    }
    if (t.rstrip)
      while (stop < text.size() && is_ws(text[stop])) ++stop;
    if (start > done) {
      ranges.emplace_back(base + done, base + start);
      token_at.push_back(-1);
    }
    ranges.emplace_back(base + start, base + stop);
    token_at.push_back(idx);
    done = stop;
  }
  if (done < text.size() || ranges.empty()) {
    ranges.emplace_back(base + done, base + text.size());
    token_at.push_back(-1);
  }
}

void JsonTokenizer::encode_plain(std::string_view segment, bool at_start,
                                 std::vector<int32_t>& out) const {
  if (segment.empty()) return;
  if (!pre_) {
    bpe_->encode_word(segment, out);
    return;
  }
  std::vector<PreTokenizer::Piece> pieces{{std::string(segment), at_start}};
  pre_->split(pieces);
  for (const auto& p : pieces) bpe_->encode_word(p.text, out);
}

std::vector<int32_t> JsonTokenizer::encode(std::string_view input, bool add_special) const {
  std::string repaired;
  if (!unicode::valid_utf8(input)) {
    repaired = unicode::utf8_lossy(input);
    input = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 4);
  if (add_special) ids = template_.before;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::vector<int> token_at;
  split_added(input, raw_matcher_, 0, ranges, token_at);
  std::string seg;
  for (size_t r = 0; r < ranges.size(); ++r) {
    const auto [a, b] = ranges[r];
    if (token_at[r] >= 0) {
      ids.push_back(added_[token_at[r]].id);
      continue;
    }
    std::string_view plain = input.substr(a, b - a);
    if (!normalizer_ && norm_matcher_.empty()) {
      encode_plain(plain, a == 0, ids);
      continue;
    }
    seg.assign(plain);
    if (normalizer_) normalizer_->apply(seg);
    if (norm_matcher_.empty()) {
      encode_plain(seg, a == 0, ids);
      continue;
    }
    std::vector<std::pair<size_t, size_t>> sub;
    std::vector<int> sub_tok;
    split_added(seg, norm_matcher_, 0, sub, sub_tok);
    for (size_t k = 0; k < sub.size(); ++k) {
      if (sub_tok[k] >= 0)
        ids.push_back(added_[sub_tok[k]].id);
      else
        encode_plain(std::string_view(seg).substr(sub[k].first, sub[k].second - sub[k].first),
                     a == 0 && sub[k].first == 0, ids);
    }
  }
  if (add_special) ids.insert(ids.end(), template_.after.begin(), template_.after.end());
  return ids;
}

}  // namespace tok
}  // namespace sq::io
