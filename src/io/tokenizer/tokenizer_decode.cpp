// Decoders of tokenizer.json (the library's decode_chain: tokens -> tokens, then joined) and
// JsonTokenizer::decode. Every id, added tokens included, goes through the decoder chain, which
// is what tokenizers 0.23 does (checked against the oracle: Llama-2 "<s> Hello").
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/tokenizer/tokenizer_impl.h"
#include "io/tokenizer/unicode.h"

namespace sq::io::tok {

namespace {

using json = nlohmann::json;

class ByteLevelDec : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      size_t mark = bytes.size();
      bool ok = true;
      for (size_t i = 0; i < t.size() && ok;) {
        int b = unicode::cp_to_byte(unicode::next_cp(t, i));
        ok = b >= 0;
        if (ok) bytes.push_back(static_cast<char>(b));
      }
      if (!ok) {  // a char outside the alphabet: the token's own UTF-8 bytes
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::utf8_lossy(bytes));
  }
};

class ReplaceDec : public Decoder {
 public:
  explicit ReplaceDec(const json& j) : content_(j.at("content").get<std::string>()) {
    const json& p = j.at("pattern");
    SQ_REQUIRE(p.contains("String"),
               "tokenizer.json: Replace decoder supports String patterns "
               "only, got "
                   << p.dump());
    from_ = p["String"].get<std::string>();
  }
  void apply(std::vector<std::string>& tokens) const override {
    if (from_.empty()) return;
    for (std::string& t : tokens) {
      std::string out;
      size_t prev = 0;
      for (size_t p = t.find(from_); p != std::string::npos; p = t.find(from_, prev)) {
        out.append(t, prev, p - prev);
        out += content_;
        prev = p + from_.size();
      }
      if (prev == 0) continue;
      out.append(t, prev, std::string::npos);
      t.swap(out);
    }
  }

 private:
  std::string from_, content_;
};

class ByteFallbackDec : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (unicode::valid_utf8(pending))
        out.push_back(pending);
      else  // one U+FFFD per byte, as the library does
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      pending.clear();
    };
    for (std::string& t : tokens) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && isxdigit(t[3]) &&
          isxdigit(t[4])) {
        pending.push_back(static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDec : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDec : public Decoder {
 public:
  explicit StripDec(const json& j)
      : content_(j.at("content").get<std::string>()),
        start_(j.value("start", 0)),
        stop_(j.value("stop", 0)) {}
  void apply(std::vector<std::string>& tokens) const override {
    const size_t n = content_.size();
    for (std::string& t : tokens) {
      size_t a = 0, b = t.size();
      for (int i = 0; i < start_ && b - a >= n && t.compare(a, n, content_) == 0; ++i) a += n;
      for (int i = 0; i < stop_ && b - a >= n && t.compare(b - n, n, content_) == 0; ++i) b -= n;
      t = t.substr(a, b - a);
    }
  }

 private:
  std::string content_;
  int start_, stop_;
};

class MetaspaceDec : public Decoder {
 public:
  explicit MetaspaceDec(const json& j) : rep_(j.value("replacement", std::string("\xE2\x96\x81"))) {
    std::string scheme = j.value("prepend_scheme", std::string());
    prepend_ = scheme.empty() ? j.value("add_prefix_space", true) : scheme != "never";
  }
  void apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, rep_.size(), rep_) == 0) {
          if (!(i == 0 && prepend_)) out.push_back(' ');
          p += rep_.size();
        } else {
          out.push_back(t[p++]);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  std::string rep_;
  bool prepend_;
};

class SequenceDec : public Decoder {
 public:
  explicit SequenceDec(const json& j) {
    for (const json& d : j.at("decoders"))
      if (auto p = Decoder::from_json(d)) steps_.push_back(std::move(p));
  }
  void apply(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps_) s->apply(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

template <typename T>
std::unique_ptr<Decoder> make(const json& j) {
  if constexpr (std::is_constructible_v<T, const json&>)
    return std::make_unique<T>(j);
  else
    return std::make_unique<T>();
}

struct Row {
  const char* type;
  std::unique_ptr<Decoder> (*make)(const json&);
};

const Row kDecoders[] = {
    {"ByteLevel", make<ByteLevelDec>},
    {"Replace", make<ReplaceDec>},
    {"ByteFallback", make<ByteFallbackDec>},
    {"Fuse", make<FuseDec>},
    {"Strip", make<StripDec>},
    {"Metaspace", make<MetaspaceDec>},
    {"Sequence", make<SequenceDec>},
};

}  // namespace

std::unique_ptr<Decoder> Decoder::from_json(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  for (const Row& r : kDecoders)
    if (type == r.type) return r.make(j);
  SQ_THROW(InputError, "tokenizer.json: unsupported decoder type '"
                           << type
                           << "' (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                              "Metaspace, Sequence)");
}

std::string JsonTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) {
      if (!(skip_special && added_[it->second].special))
        tokens.push_back(added_[it->second].content);
      continue;
    }
    if (const std::string* t = bpe_->id_to_token(id)) tokens.push_back(*t);  // unknown ids dropped
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  decoder_->apply(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace sq::io::tok
