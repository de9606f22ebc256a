// Pre-tokenizers of tokenizer.json. Split behaviours follow the tokenizers library's
// SplitDelimiterBehavior exactly (including "only the first of consecutive matches merges"
// for MergedWithPrevious/Next); empty pieces are dropped after every step, as the library does.
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/tokenizer/pretokenize.h"

namespace sq::io::tok {

namespace {

using json = nlohmann::json;

// GPT-2's pattern, used by ByteLevel when use_regex is true.
const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

const std::pair<const char*, Behavior> kBehaviors[] = {
    {"Removed", Behavior::kRemoved},
    {"Isolated", Behavior::kIsolated},
    {"MergedWithPrevious", Behavior::kMergedWithPrevious},
    {"MergedWithNext", Behavior::kMergedWithNext},
    {"Contiguous", Behavior::kContiguous},
};

Behavior parse_behavior(const std::string& s) {
  for (const auto& [name, b] : kBehaviors)
    if (s == name) return b;
  SQ_THROW(InputError, "tokenizer.json: unsupported Split behavior '" << s << "'");
}

struct Span {
  size_t a, b;
  bool match;
};

// Applies a split behaviour to the spans (covering the whole text) and appends the pieces.
void emit_pieces(const std::string& text, bool at_start, std::vector<Span> spans, Behavior beh,
                 std::vector<PreTokenizer::Piece>& out) {
  std::vector<Span> merged;
  bool prev_match = false;
  switch (beh) {
    case Behavior::kIsolated:
      merged = std::move(spans);
      break;
    case Behavior::kRemoved:
      for (const Span& s : spans)
        if (!s.match) merged.push_back(s);
      break;
    case Behavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.match && !prev_match && !merged.empty())
          merged.back().b = s.b;
        else
          merged.push_back(s);
        prev_match = s.match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !prev_match && !merged.empty())
          merged.back().a = it->a;
        else
          merged.push_back(*it);
        prev_match = it->match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    case Behavior::kContiguous:
      for (size_t i = 0; i < spans.size(); ++i) {
        if (i > 0 && spans[i].match == prev_match)
          merged.back().b = spans[i].b;
        else
          merged.push_back(spans[i]);
        prev_match = spans[i].match;
      }
      break;
  }
  for (const Span& s : merged)
    if (s.b > s.a) out.push_back({text.substr(s.a, s.b - s.a), at_start && s.a == 0});
}

// Spans of `text` from a matcher fn(text, pos, start, end) -> bool.
template <typename Find>
std::vector<Span> spans_of(const std::string& text, bool invert, Find&& find) {
  std::vector<Span> spans;
  size_t prev = 0, pos = 0, s, e;
  while (find(text, pos, s, e)) {
    if (s > prev) spans.push_back({prev, s, invert});
    spans.push_back({s, e, !invert});
    prev = e;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), invert});
  return spans;
}

class SplitPre : public PreTokenizer {
 public:
  explicit SplitPre(const json& j)
      : beh_(parse_behavior(j.at("behavior").get<std::string>())),
        invert_(j.value("invert", false)) {
    const json& p = j.at("pattern");
    if (p.contains("String"))
      literal_ = p["String"].get<std::string>();
    else if (p.contains("Regex"))
      re_ = std::make_unique<Regex>(p["Regex"].get<std::string>());
    else
      SQ_THROW(InputError, "tokenizer.json: Split pattern must be String or Regex: " << p.dump());
  }
  SplitPre(const char* regex, Behavior beh, bool invert)
      : re_(std::make_unique<Regex>(regex)), beh_(beh), invert_(invert) {}

  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) {
      std::vector<Span> spans;
      if (re_) {
        spans =
            spans_of(p.text, invert_, [&](const std::string& t, size_t& pos, size_t& s, size_t& e) {
              return re_->next(t, pos, s, e);
            });
      } else {
        spans =
            spans_of(p.text, invert_, [&](const std::string& t, size_t& pos, size_t& s, size_t& e) {
              if (literal_.empty()) return false;
              s = t.find(literal_, pos);
              if (s == std::string::npos) return false;
              e = pos = s + literal_.size();
              return true;
            });
      }
      emit_pieces(p.text, p.at_start, std::move(spans), beh_, out);
    }
    pieces.swap(out);
  }

 private:
  std::unique_ptr<Regex> re_;
  std::string literal_;
  Behavior beh_;
  bool invert_;
};

// ByteLevel: optional prefix space and GPT-2 split; the byte->char mapping itself is done by
// the BPE model, which works on raw bytes when byte_level() is true.
class ByteLevelPre : public PreTokenizer {
 public:
  explicit ByteLevelPre(const json& j)
      : prefix_space_(j.value("add_prefix_space", true)), gpt2_(j.value("use_regex", true)) {
    if (gpt2_) split_ = std::make_unique<SplitPre>(kGpt2Regex, Behavior::kIsolated, false);
  }
  void split(std::vector<Piece>& pieces) const override {
    if (prefix_space_)
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
    if (split_) split_->split(pieces);
  }
  bool byte_level() const override { return true; }

 private:
  bool prefix_space_, gpt2_;
  std::unique_ptr<SplitPre> split_;
};

class MetaspacePre : public PreTokenizer {
 public:
  explicit MetaspacePre(const json& j)
      : rep_(j.value("replacement", std::string("\xE2\x96\x81"))), split_(j.value("split", true)) {
    // Older files say add_prefix_space (bool) instead of prepend_scheme.
    std::string scheme = j.value("prepend_scheme", std::string());
    if (scheme.empty()) scheme = j.value("add_prefix_space", true) ? "always" : "never";
    SQ_REQUIRE(scheme == "always" || scheme == "first" || scheme == "never",
               "tokenizer.json: unsupported Metaspace prepend_scheme '" << scheme << "'");
    scheme_ = scheme;
  }
  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (Piece& p : pieces) {
      std::string t;
      for (char c : p.text) {
        if (c == ' ')
          t += rep_;
        else
          t.push_back(c);
      }
      bool starts = t.compare(0, rep_.size(), rep_) == 0;
      if (!starts && (scheme_ == "always" || (scheme_ == "first" && p.at_start))) t.insert(0, rep_);
      if (!split_) {
        out.push_back({std::move(t), p.at_start});
        continue;
      }
      std::vector<Span> spans =
          spans_of(t, false, [&](const std::string& s, size_t& pos, size_t& a, size_t& b) {
            a = s.find(rep_, pos);
            if (a == std::string::npos) return false;
            b = pos = a + rep_.size();
            return true;
          });
      emit_pieces(t, p.at_start, std::move(spans), Behavior::kMergedWithNext, out);
    }
    pieces.swap(out);
  }

 private:
  std::string rep_, scheme_;
  bool split_;
};

class SequencePre : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> v) : steps_(std::move(v)) {}
  void split(std::vector<Piece>& pieces) const override {
    for (const auto& s : steps_) s->split(pieces);
  }
  bool byte_level() const override {
    for (const auto& s : steps_)
      if (s->byte_level()) return true;
    return false;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

using Factory = std::unique_ptr<PreTokenizer> (*)(const json&);
struct Row {
  const char* type;
  Factory make;
};

const Row kPreTokenizers[] = {
    {"Sequence",
     [](const json& j) -> std::unique_ptr<PreTokenizer> {
       std::vector<std::unique_ptr<PreTokenizer>> v;
       for (const auto& p : j.at("pretokenizers"))
         if (auto x = PreTokenizer::from_json(p)) v.push_back(std::move(x));
       return std::make_unique<SequencePre>(std::move(v));
     }},
    {"Split",
     [](const json& j) -> std::unique_ptr<PreTokenizer> { return std::make_unique<SplitPre>(j); }},
    {"ByteLevel",
     [](const json& j) -> std::unique_ptr<PreTokenizer> {
       return std::make_unique<ByteLevelPre>(j);
     }},
    {"Metaspace",
     [](const json& j) -> std::unique_ptr<PreTokenizer> {
       return std::make_unique<MetaspacePre>(j);
     }},
    {"Digits",
     [](const json& j) -> std::unique_ptr<PreTokenizer> {
       bool each = j.value("individual_digits", false);
       return std::make_unique<SplitPre>(each ? R"(\p{N})" : R"(\p{N}+)", Behavior::kIsolated,
                                         false);
     }},
    {"WhitespaceSplit",
     [](const json&) -> std::unique_ptr<PreTokenizer> {
       return std::make_unique<SplitPre>(R"(\s+)", Behavior::kRemoved, false);
     }},
    {"Whitespace",
     [](const json&) -> std::unique_ptr<PreTokenizer> {
       return std::make_unique<SplitPre>(R"(\w+|[^\w\s]+)", Behavior::kRemoved, true);
     }},
};

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  for (const Row& r : kPreTokenizers)
    if (type == r.type) return r.make(j);
  SQ_THROW(InputError, "tokenizer.json: unsupported pre_tokenizer type '"
                           << type
                           << "' (supported: Sequence, Split, ByteLevel, Metaspace, Digits, "
                              "Whitespace, WhitespaceSplit)");
}

}  // namespace sq::io::tok
