// Post-processors of tokenizer.json reduced to what a single sequence needs: the ids placed
// before and after it. Supported types are the rows of kProcessors.
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/tokenizer/tokenizer_impl.h"

namespace sq::io::tok {

namespace {

using json = nlohmann::json;

Template template_processing(const json& j) {
  Template t;
  const json& specials = j.value("special_tokens", json::object());
  bool seen_seq = false;
  for (const json& item : j.at("single")) {
    if (item.contains("Sequence")) {
      seen_seq = true;
      continue;
    }
    SQ_REQUIRE(item.contains("SpecialToken"),
               "tokenizer.json: TemplateProcessing item not understood: " << item.dump());
    const std::string name = item["SpecialToken"].at("id").get<std::string>();
    SQ_REQUIRE(specials.contains(name), "tokenizer.json: TemplateProcessing special token '"
                                            << name << "' missing from special_tokens");
    for (const json& id : specials[name].at("ids")) {
      (seen_seq ? t.after : t.before).push_back(id.get<int32_t>());
      if (!seen_seq && !t.first_special) t.first_special = id.get<int32_t>();
    }
  }
  return t;
}

// BertProcessing / RobertaProcessing: cls A sep, each given as [token, id].
Template cls_sep(const json& j) {
  Template t;
  t.before.push_back(j.at("cls").at(1).get<int32_t>());
  t.after.push_back(j.at("sep").at(1).get<int32_t>());
  t.first_special = t.before[0];
  return t;
}

struct Row {
  const char* type;
  Template (*make)(const json&);
};

const Row kProcessors[] = {
    {"TemplateProcessing", template_processing},
    {"ByteLevel", [](const json&) { return Template{}; }},  // offsets only
    {"BertProcessing", cls_sep},
    {"RobertaProcessing", cls_sep},
    {"Sequence",
     [](const json& j) {
       Template all;
       for (const json& p : j.at("processors")) {
         Template t = template_from_json(p);
         all.before.insert(all.before.end(), t.before.begin(), t.before.end());
         all.after.insert(all.after.begin(), t.after.begin(), t.after.end());
         if (!all.first_special) all.first_special = t.first_special;
       }
       return all;
     }},
};

}  // namespace

Template template_from_json(const json& j) {
  if (j.is_null()) return {};
  const std::string type = j.value("type", "");
  for (const Row& r : kProcessors)
    if (type == r.type) return r.make(j);
  SQ_THROW(InputError, "tokenizer.json: unsupported post_processor type '"
                           << type
                           << "' (supported: TemplateProcessing, ByteLevel, BertProcessing, "
                              "RobertaProcessing, Sequence)");
}

}  // namespace sq::io::tok
