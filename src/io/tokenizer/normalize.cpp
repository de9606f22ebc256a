// Normalizers of tokenizer.json. Supported types are the rows of kNormalizers; the Replace
// pattern may be a literal String or a Regex, as in the tokenizers library.
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/tokenizer/pretokenize.h"
#include "io/tokenizer/unicode.h"

namespace sq::io::tok {

namespace {

using json = nlohmann::json;

class SequenceNorm : public Normalizer {
 public:
  explicit SequenceNorm(std::vector<std::unique_ptr<Normalizer>> v) : steps_(std::move(v)) {}
  void apply(std::string& s) const override {
    for (const auto& n : steps_) n->apply(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class PrependNorm : public Normalizer {
 public:
  explicit PrependNorm(std::string p) : p_(std::move(p)) {}
  void apply(std::string& s) const override {
    if (!s.empty()) s.insert(0, p_);  // the library prepends only to non-empty strings
  }

 private:
  std::string p_;
};

class ReplaceNorm : public Normalizer {
 public:
  ReplaceNorm(const json& pattern, std::string content) : content_(std::move(content)) {
    if (pattern.contains("String")) {
      literal_ = pattern["String"].get<std::string>();
    } else {
      SQ_REQUIRE(pattern.contains("Regex"),
                 "tokenizer.json: Replace normalizer pattern must be "
                 "String or Regex, got "
                     << pattern.dump());
      re_ = std::make_unique<Regex>(pattern["Regex"].get<std::string>());
    }
  }
  void apply(std::string& s) const override {
    std::string out;
    size_t prev = 0;
    auto emit = [&](size_t a, size_t b) {
      out.append(s, prev, a - prev);
      out.append(content_);
      prev = b;
    };
    if (re_) {
      re_->for_each_match(s, emit);
    } else if (!literal_.empty()) {
      for (size_t p = s.find(literal_); p != std::string::npos; p = s.find(literal_, prev))
        emit(p, p + literal_.size());
    }
    if (prev == 0) return;
    out.append(s, prev, std::string::npos);
    s.swap(out);
  }

 private:
  std::string literal_, content_;
  std::unique_ptr<Regex> re_;
};

class NfcNorm : public Normalizer {
 public:
  void apply(std::string& s) const override { s = unicode::nfc(s); }
};

class StripNorm : public Normalizer {
 public:
  StripNorm(bool l, bool r) : left_(l), right_(r) {}
  void apply(std::string& s) const override {
    // ASCII whitespace only; the library strips Unicode White_Space (no family in
    // REFERENCE.md §5 uses Strip).
    static const char* ws[] = {" ", "\t", "\n", "\r", "\v", "\f"};
    auto is_ws = [](char c) {
      for (const char* w : ws)
        if (c == w[0]) return true;
      return false;
    };
    size_t a = 0, b = s.size();
    if (left_)
      while (a < b && is_ws(s[a])) ++a;
    if (right_)
      while (b > a && is_ws(s[b - 1])) --b;
    s = s.substr(a, b - a);
  }

 private:
  bool left_, right_;
};

using Factory = std::unique_ptr<Normalizer> (*)(const json&);

struct Row {
  const char* type;
  Factory make;
};

const Row kNormalizers[] = {
    {"Sequence",
     [](const json& j) -> std::unique_ptr<Normalizer> {
       std::vector<std::unique_ptr<Normalizer>> v;
       for (const auto& n : j.at("normalizers"))
         if (auto p = Normalizer::from_json(n)) v.push_back(std::move(p));
       return std::make_unique<SequenceNorm>(std::move(v));
     }},
    {"Prepend",
     [](const json& j) -> std::unique_ptr<Normalizer> {
       return std::make_unique<PrependNorm>(j.at("prepend").get<std::string>());
     }},
    {"Replace",
     [](const json& j) -> std::unique_ptr<Normalizer> {
       return std::make_unique<ReplaceNorm>(j.at("pattern"), j.at("content").get<std::string>());
     }},
    {"NFC", [](const json&) -> std::unique_ptr<Normalizer> { return std::make_unique<NfcNorm>(); }},
    {"Strip",
     [](const json& j) -> std::unique_ptr<Normalizer> {
       return std::make_unique<StripNorm>(j.value("strip_left", true),
                                          j.value("strip_right", true));
     }},
};

}  // namespace

std::unique_ptr<Normalizer> Normalizer::from_json(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  for (const Row& r : kNormalizers)
    if (type == r.type) return r.make(j);
  SQ_THROW(InputError, "tokenizer.json: unsupported normalizer type '"
                           << type << "' (supported: Sequence, Prepend, Replace, NFC, Strip)");
}

}  // namespace sq::io::tok
