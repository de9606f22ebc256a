// Assembling a quantized checkpoint directory safely.
//
// CONTRACT:
// - OutputDir writes everything into "<final>.partial/"; commit() renames it to <final> only at
//   the very end, so an interrupted run never leaves a directory that looks finished. An
//   existing <final> is replaced only at commit time (moved aside, then removed).
// - The input model directory is never written: the constructor refuses a final path equal to
//   the input dir or to any file in it (InputError).
// - copy_aux_files() copies tokenizer files, generation config, chat templates and custom
//   *.py code (the table kAuxFilePatterns in output_dir.cpp) byte for byte.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sq::io {

class OutputDir {
 public:
  // `resume` keeps an existing .partial (its finished shards can be reused); otherwise a stale
  // .partial from an earlier interrupted run is removed first.
  OutputDir(const std::string& final_path, const std::string& input_dir, bool resume = false);
  const std::string& final_path() const { return final_; }
  const std::string& partial_path() const { return partial_; }
  std::string file(const std::string& name) const { return partial_ + "/" + name; }
  // Copies auxiliary files from the input dir; returns the names copied.
  std::vector<std::string> copy_aux_files() const;
  // Writes pretty JSON atomically (tmp + rename) inside the partial dir.
  void write_json(const std::string& name, const nlohmann::json& j) const;
  // Empties the partial directory (an earlier run's leftovers with nothing to resume).
  void clear_partial() const;
  // Renames partial → final.
  void commit();
  bool committed() const { return committed_; }

 private:
  std::string final_, partial_, input_;
  bool committed_ = false;
};

// Reads <model_dir>/config.json as JSON (InputError on failure).
nlohmann::json read_json_file(const std::string& path);
// Writes JSON atomically: <path>.tmp then rename. 2-space indentation, trailing newline.
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace sq::io
