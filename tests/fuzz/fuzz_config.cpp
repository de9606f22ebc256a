// config.json → ModelConfig, as load_model_config reads it (invalid JSON is an InputError there
// too), plus the typed getters the architecture code calls on extra keys.
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "io/model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  sq::fuzz::expect_only_input_errors([&] {
    auto c = sq::io::parse_model_config(j, "config.json");
    (void)c.get_double("rope_theta", 1.0);
    (void)c.get_int("head_dim", 1);
    (void)c.get_bool("tie_word_embeddings", false);
    (void)c.get_string("hidden_act", "");
    for (const auto& t : c.layer_types) (void)c.rope_for(t);
  });
  return 0;
}
