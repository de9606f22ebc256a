// Faults during a run and bad weights in a real model (issue 24 points 3 and 4), on copies of the
// house model (CPU, GPTQ w4, 8 × 128 calibration tokens: ~10 s a run). Each fault must end the
// run with a message naming the file (and tensor), the documented exit code, the output left as
// <out>.partial and no final directory; handled cases must finish with finite scales.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/bad_models.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "io/safetensors/safetensors.h"

namespace sq::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string quantize_args(const std::string& model, const std::string& out) {
  return "--model_path '" + model + "' --output_dir '" + out +
         "' --force-cpu --gptq --bits 4 --calib-size 8 --seq_len 128 --calib-file '" +
         shared("data/corpus/brown-train.txt") + "'";
}

// `bash -c "<prefix> exec shardquant <args>"` in the background, stdout+stderr to `log`; a
// prefix that starts with "exec " is a command wrapping shardquant ("exec setpriv ...").
struct Background {
  pid_t pid = -1;
  std::string log;
  int status = -1;
  Background(const std::string& prefix, const std::string& args, const std::string& log_path)
      : log(log_path) {
    const bool wraps = prefix.rfind("exec ", 0) == 0;
    const std::string cmd =
        prefix + (wraps ? " '" : " exec '") + binary() + "' " + args + " >'" + log + "' 2>&1";
    pid = fork();
    if (pid == 0) {
      for (const auto& n : shardquant_env_names()) unsetenv(n.c_str());
      execl("/bin/bash", "bash", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  // Exit status (128 + signal when killed); -1 on timeout (the process is then killed).
  int wait(double timeout_s) {
    const auto end = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < end) {
      int st = 0;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  bool wait_for_text(const std::string& text, double timeout_s) {
    const auto end = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < end) {
      if (slurp(log).find(text) != std::string::npos) return true;
      if (waitpid(pid, &status, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  std::string output() const { return slurp(log); }
};

class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(house_model() + "/config.json")) GTEST_SKIP() << "house model absent";
    model_ = tmp_ / "model";
    out_ = tmp_ / "out";
    link_model(house_model(), model_);
  }
  // Overwrites `count` bf16 elements of `tensor` from element `first` with `bits`.
  void poke_bf16(const std::string& tensor, int64_t first, int64_t count, uint16_t bits) {
    const fs::path link = fs::path(model_) / shard_of(model_, tensor);
    const std::string path =
        fs::is_symlink(link) ? materialize(model_, shard_of(model_, tensor)) : link.string();
    uint64_t at = 0;
    {
      auto f = io::SafetensorsFile::open(path);
      ASSERT_EQ(f->at(tensor).dtype, io::DType::BF16);
      at = (f->file_size() - f->tensors().back().end) + f->at(tensor).begin + first * 2;
    }
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(at));
    for (int64_t i = 0; i < count; ++i) io.write(reinterpret_cast<const char*>(&bits), 2);
  }
  void expect_no_final_output(const std::string& why) {
    EXPECT_FALSE(fs::exists(out_)) << why << ": a failed run must not leave a final directory";
  }
  TempDir tmp_;
  std::string model_, out_;
};

// ---- bad weights ---------------------------------------------------------------------------

TEST_F(Faults, NaNInASourceWeightFailsNamingFileAndTensor) {
  const std::string tensor = "model.layers.2.mlp.down_proj.weight";  // [384, 1024]
  poke_bf16(tensor, 1024 * 7 + 5, 1, 0x7FC0);                        // NaN at [7, 5]
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_EQ(run.wait(240), 2) << run.output();
  const std::string out = run.output();
  EXPECT_NE(out.find(shard_of(model_, tensor)), std::string::npos) << out;
  EXPECT_NE(out.find("\"" + tensor + "\" holds 1 NaN and 0 infinite values (first at [7, 5])"),
            std::string::npos)
      << out;
  expect_no_final_output("NaN weight");
}

TEST_F(Faults, InfInASourceWeightFailsNamingFileAndTensor) {
  const std::string tensor = "model.layers.0.self_attn.q_proj.weight";
  poke_bf16(tensor, 0, 1, 0xFF80);  // -Inf at [0, 0]
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_EQ(run.wait(240), 2) << run.output();
  EXPECT_NE(
      run.output().find("\"" + tensor + "\" holds 0 NaN and 1 infinite values (first at [0, 0])"),
      std::string::npos)
      << run.output();
  expect_no_final_output("Inf weight");
}

TEST_F(Faults, AllZeroRowIsCountedAndQuantizesToExactZeros) {
  const std::string tensor = "model.layers.1.self_attn.q_proj.weight";  // [384, 384]
  poke_bf16(tensor, 384 * 10, 384, 0x0000);                             // row 10
  poke_bf16(tensor, 384 * 11, 384, 0x8000);                             // row 11: -0.0
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_EQ(run.wait(240), 0) << run.output();
  EXPECT_NE(run.output().find("\"" + tensor + "\": 2 of 384 rows are all zero"), std::string::npos)
      << run.output();
  io::ModelWeights q(out_);  // read back dequantized, as eval does
  for (const auto& n : q.stored_names())
    if (n.size() > 7 && n.compare(n.size() - 7, 7, ".scales") == 0)
      EXPECT_TRUE(q.get_stored(n).isfinite().all().item<bool>()) << n;
  const at::Tensor w = q.get("model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(w[10].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(w[11].abs().max().item<float>(), 0.0f);
}

TEST_F(Faults, LinearStoredInAnotherFloatDtypeIsCountedAndQuantized) {
  // Rewrite shard 3 with one linear as F32 (config.json says bfloat16).
  const std::string tensor = "model.layers.5.mlp.up_proj.weight";
  const std::string shard = shard_of(model_, tensor);
  {
    io::ModelWeights src(house_model());
    std::vector<io::TensorToWrite> ts;
    for (const auto& n : src.names())
      if (src.file_of(n) == house_model() + "/" + shard) {
        at::Tensor t = src.get(n).clone();
        ts.push_back({n, n == tensor ? t.to(at::kFloat) : t, {}});
      }
    fs::remove(fs::path(model_) / shard);
    io::write_safetensors((fs::path(model_) / shard).string(), ts, {{"format", "pt"}});
  }
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_EQ(run.wait(240), 0) << run.output();
  EXPECT_NE(run.output().find("1 floating tensor(s) are not stored as BF16 (config.json "
                              "torch_dtype bfloat16): " +
                              tensor + " (F32"),
            std::string::npos)
      << run.output();
  EXPECT_TRUE(fs::exists(fs::path(out_) / "model.safetensors"));
}

// ---- faults during a run -------------------------------------------------------------------

TEST_F(Faults, FileSizeLimitExits3NamingTheFileAndLeavesPartial) {
  // ulimit -f 1024 = 512 KiB per file: the log and JSON files fit, the 8 MB shard does not.
  Background run("ulimit -f 1024;", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_EQ(run.wait(240), 3) << run.output();
  const std::string out = run.output();
  // The first file over the limit: a shard, or (issue 22) the first block's checkpoint.
  EXPECT_NE(out.find("system error: " + out_ + ".partial/"), std::string::npos) << out;
  EXPECT_NE(out.find("File too large"), std::string::npos) << out;
  EXPECT_TRUE(fs::is_directory(out_ + ".partial"));
  expect_no_final_output("file size limit");
}

TEST_F(Faults, DiskFullExits3NamingTheFileAndLeavesPartial) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  const std::string mnt = tmp_ / "small";
  fs::create_directories(mnt);
  const std::string mount = "mount -t tmpfs -o size=1m sqtest '" + mnt + "' 2>&1";
  if (std::system(mount.c_str()) != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  out_ = mnt + "/out";
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  const int rc = run.wait(240);
  const bool partial = fs::is_directory(out_ + ".partial"), final_dir = fs::exists(out_);
  std::system(("umount '" + mnt + "'").c_str());
  ASSERT_EQ(rc, 3) << run.output();
  EXPECT_NE(run.output().find(out_ + ".partial/"), std::string::npos) << run.output();
  EXPECT_NE(run.output().find("No space left on device"), std::string::npos) << run.output();
  EXPECT_TRUE(partial);
  EXPECT_FALSE(final_dir);
}

// Issue 22: a record after every block, whatever --checkpoint-every says; SEC > 0 only spaces
// out the chain's activations generations (each a device-to-host copy and a disk write of the
// block input). A run shorter than SEC writes none: a kill at solve:3 leaves the record of
// block 2 and no rank-0.x-*.h5, and --resume forwards blocks 0..2 again instead of solving them.
// With 0 a generation follows every block (the one for block 3's input is kept).
TEST_F(Faults, CheckpointEverySpacesActivationsNotRecords) {
  Background killed("SQ_TEST_KILL_AT=solve:3", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_NE(killed.wait(240), 0) << killed.output();
  const std::string ck = out_ + ".partial/.checkpoint/";
  EXPECT_TRUE(fs::exists(ck + "rank-0.h5")) << killed.output();
  for (const auto& e : fs::directory_iterator(ck))
    EXPECT_EQ(e.path().filename().string().find(".x-"), std::string::npos) << e.path();
  Background resumed("", quantize_args(model_, out_) + " --resume", tmp_ / "log2");
  ASSERT_EQ(resumed.wait(240), 0) << resumed.output();
  EXPECT_NE(resumed.output().find("recomputing the input of block 3 from block 0's"),
            std::string::npos)
      << resumed.output();
  EXPECT_NE(resumed.output().find("resumed: 3 of 6 blocks"), std::string::npos) << resumed.output();

  const std::string out0 = tmp_ / "every0";
  Background every0("SQ_TEST_KILL_AT=solve:3",
                    quantize_args(model_, out0) + " --checkpoint-every 0", tmp_ / "log3");
  ASSERT_NE(every0.wait(240), 0) << every0.output();
  EXPECT_TRUE(fs::exists(out0 + ".partial/.checkpoint/rank-0.h5")) << every0.output();
  EXPECT_TRUE(fs::exists(out0 + ".partial/.checkpoint/rank-0.x-3.h5")) << every0.output();
  EXPECT_FALSE(fs::exists(out0 + ".partial/.checkpoint/rank-0.x-2.h5")) << every0.output();
}

// Issue 22: SIGTERM lets the block in progress finish, checkpoints it and exits 143 with the
// resume hint; a rerun without --resume is refused (the checkpoint kept), one with it finishes.
TEST_F(Faults, SigtermStopsAtABlockBoundaryLeavingACheckpointThatResumeFinishes) {
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_TRUE(run.wait_for_text("block 1/6", 120)) << run.output();
  const auto t0 = Clock::now();
  kill(run.pid, SIGTERM);
  EXPECT_EQ(run.wait(60), 128 + SIGTERM) << run.output();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 30.0);
  EXPECT_NE(run.output().find("of 6; rerun with --resume"), std::string::npos) << run.output();
  EXPECT_TRUE(fs::exists(out_ + ".partial/.checkpoint/rank-0.h5"));
  expect_no_final_output("SIGTERM");
  Background again("", quantize_args(model_, out_), tmp_ / "log2");
  ASSERT_EQ(again.wait(240), 2) << again.output();
  EXPECT_NE(again.output().find("rerun with --resume"), std::string::npos) << again.output();
  EXPECT_TRUE(fs::exists(out_ + ".partial/.checkpoint/rank-0.h5"));
  Background resumed("", quantize_args(model_, out_) + " --resume", tmp_ / "log3");
  ASSERT_EQ(resumed.wait(240), 0) << resumed.output();
  EXPECT_TRUE(fs::exists(fs::path(out_) / "model.safetensors"));
  EXPECT_FALSE(fs::exists(out_ + ".partial"));
}

TEST_F(Faults, UnreadableShardIsAnInputErrorNamingIt) {
  const std::string shard = shard_of(model_, "model.layers.5.mlp.up_proj.weight");
  const std::string path = materialize(model_, shard);
  fs::permissions(path, fs::perms::none);
  // root reads any file: run as nobody then (the model and output dirs made reachable for it).
  std::string prefix;
  if (geteuid() == 0) {
    if (std::system("command -v setpriv >/dev/null") != 0) GTEST_SKIP() << "root without setpriv";
    fs::permissions(tmp_.path(), fs::perms::all);
    fs::permissions(model_, fs::perms::all);
    prefix = "exec setpriv --reuid=65534 --regid=65534 --clear-groups";
  }
  Background run(prefix, quantize_args(model_, out_), tmp_ / "log");
  ASSERT_EQ(run.wait(240), 2) << run.output();
  EXPECT_NE(run.output().find(path + ": permission denied"), std::string::npos) << run.output();
  expect_no_final_output("unreadable shard");
}

TEST_F(Faults, ShardRemovedMidRunIsReadToTheEnd) {
  // The shards are mapped when the run starts: deleting one does not lose its data.
  const std::string shard = shard_of(model_, "model.layers.5.mlp.up_proj.weight");
  materialize(model_, shard);
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_TRUE(run.wait_for_text("block 1/6", 120)) << run.output();
  fs::remove(fs::path(model_) / shard);
  ASSERT_EQ(run.wait(240), 0) << run.output();
  EXPECT_TRUE(fs::exists(fs::path(out_) / "model.safetensors"));
}

TEST_F(Faults, ShardTruncatedMidRunExits3NamingFileAndTensor) {
  const std::string shard = shard_of(model_, "model.layers.5.mlp.up_proj.weight");
  const std::string path = materialize(model_, shard);
  Background run("", quantize_args(model_, out_), tmp_ / "log");
  ASSERT_TRUE(run.wait_for_text("block 1/6", 120)) << run.output();
  fs::resize_file(path, 8192);  // blocks 4 and 5 live here and are not read yet
  ASSERT_EQ(run.wait(240), 3) << run.output();
  const std::string out = run.output();
  EXPECT_NE(out.find(path + ": input file shrank while being read (tensor \"model.layers.4."),
            std::string::npos)
      << out;
  EXPECT_TRUE(fs::is_directory(out_ + ".partial"));
  expect_no_final_output("truncated shard");
}

// ---- resource limits (point 5) ---------------------------------------------------------------

// The default calibration (128 × 2048 tokens, AWQ on the CPU) is estimated at ~2.15 GiB of host
// memory; under ulimit -v 1.5 GiB the run must stop before any work with the estimate in the
// message (exit 3), and the dry run must say so as a warning.
TEST_F(Faults, AddressSpaceLimitBelowTheEstimateFailsUpFront) {
  const std::string args = "--model_path '" + model_ + "' --output_dir '" + out_ + "' --force-cpu";
  Background dry("", args + " --dry-run", tmp_ / "dry");
  ASSERT_EQ(dry.wait(120), 0) << dry.output();
  const std::string plan = dry.output();
  const size_t at = plan.find("peak host memory: ");
  ASSERT_NE(at, std::string::npos) << plan;
  const std::string estimate = plan.substr(at + 18, plan.find(' ', at + 18) - at - 18);
  ASSERT_GT(std::stoull(estimate), 1600000ull * 1024) << "the limit below must be under it";

  Background limited_dry("ulimit -v 1600000;", args + " --dry-run", tmp_ / "ldry");
  ASSERT_EQ(limited_dry.wait(120), 0) << limited_dry.output();
  EXPECT_NE(limited_dry.output().find("[warning] host memory: the plan's estimated peak is " +
                                      estimate + " bytes"),
            std::string::npos)
      << limited_dry.output();

  const auto t0 = Clock::now();
  Background run("ulimit -v 1600000;", args, tmp_ / "log");
  ASSERT_EQ(run.wait(240), 3) << run.output();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 30.0) << run.output();
  EXPECT_NE(run.output().find("host memory: the plan's estimated peak is " + estimate + " bytes"),
            std::string::npos)
      << run.output();
  EXPECT_NE(run.output().find("ulimit -v"), std::string::npos) << run.output();
  EXPECT_EQ(run.output().find("calibration:"), std::string::npos) << "work started:\n"
                                                                  << run.output();
  expect_no_final_output("memory limit");
}

}  // namespace
}  // namespace sq::test
