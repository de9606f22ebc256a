// Calibration text: the first byte picks how the file is read (.txt plain text, .jsonl JSON
// Lines with a "text" field, .json the same); the rest is the file. The Brown tag stripper
// gets the same bytes as one tagged line.
#include "fuzz_util.h"
#include "io/calib/corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kNames[] = {"calib.txt", "calib.jsonl", "calib.json"};
  const std::string path = sq::fuzz::write_file(kNames[data[0] % 3], data + 1, size - 1);
  sq::fuzz::expect_only_input_errors([&] {
    auto src = sq::io::load_text_file(path);
    (void)src.describe();
  });
  sq::fuzz::expect_only_input_errors([&] {
    (void)sq::io::strip_brown_tags(
        std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  });
  return 0;
}
