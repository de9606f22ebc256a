// The distributed run's skeleton: transport, plan agreement, calibration broadcast, the
// quantization step of the chosen mode, and the merge on rank 0. Each phase is one agreed_step so
// that a failure anywhere becomes the same error on every rank (no rank is left waiting); the
// phases themselves live in distributed_blocks.cpp / distributed_data.cpp.
#include "coordinator/distributed.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/distributed_internal.h"
#include "coordinator/merge.h"
#include "coordinator/run_support.h"
#include "io/gptq_rewrite.h"
#include "io/output_dir.h"
#include "io/tokenizer.h"
#include "rank/device.h"
#include "rank/oom.h"
#include "rank/transport_counting.h"

namespace sq::coordinator {
namespace {

using clock = std::chrono::steady_clock;

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? 0 : std::atoi(v);
}

// Processes of this job on this host, from the launcher's environment (Open MPI, MPICH); 1 when
// neither says.
int ranks_on_this_host() {
  return std::max({1, env_int("OMPI_COMM_WORLD_LOCAL_SIZE"), env_int("MPI_LOCALNRANKS")});
}

rank::TransportKind transport_for(const Options& o) {
  if (o.transport) return *o.transport;
  const bool gpus = run_device(o).is_cuda();
  // NCCL needs one GPU per rank. When more ranks than GPUs share this host (e.g. `mpirun -n 4`
  // on a one-GPU machine), the auto choice falls back to MPI instead of failing at NCCL init.
  // MPI is not initialized yet here, so the launcher's per-host rank count is read from its
  // environment (Open MPI, then Slurm); an explicit --transport nccl is never overridden.
  int local_ranks = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (local_ranks == 0) local_ranks = env_int("SLURM_NTASKS_PER_NODE");
  const int n_gpus = gpus ? static_cast<int>(rank::cuda_device_count()) : 0;
  if (gpus && local_ranks > n_gpus) {
    log()->warn(
        "{} ranks share {} GPU(s) on this host: NCCL needs one GPU per rank, using the MPI "
        "transport (--transport nccl to insist)",
        local_ranks, n_gpus);
    return rank::default_transport_kind(false);
  }
  return rank::default_transport_kind(gpus);
}

// Rank 0's calibration set, broadcast so that every rank holds identical tokens (and a
// --calib-cache file is written by one process only).
io::CalibSet share_calibration(rank::Transport& t, const Options& o) {
  io::CalibSet calib;
  std::string head;
  if (t.rank() == 0) {
    auto tok = io::Tokenizer::load(o.model_path);
    calib = io::build_calibration(calib_options(o), *tok);
    for (const auto& wmsg : calib.warnings) log()->warn("calibration: {}", wmsg);
    head = nlohmann::json{{"n", calib.tokens.size(0)},
                          {"T", calib.tokens.size(1)},
                          {"provenance", calib.provenance},
                          {"from_cache", calib.from_cache}}
               .dump();
  }
  t.broadcast_bytes(head, 0);
  const auto j = nlohmann::json::parse(head);
  const int64_t n = j.at("n"), T = j.at("T");
  at::Tensor tok =
      t.rank() == 0 ? calib.tokens.to(at::kLong).contiguous() : at::empty({n, T}, at::kLong);
  at::Tensor msk =
      t.rank() == 0 ? calib.mask.to(at::kLong).contiguous() : at::empty({n, T}, at::kLong);
  t.broadcast(tok, 0);
  t.broadcast(msk, 0);
  calib.tokens = tok;
  calib.mask = msk.to(at::kBool);
  calib.provenance = j.at("provenance");
  calib.from_cache = j.at("from_cache");
  return calib;
}

// Rank 0 after every rank succeeded: non-block tensors, then the fragments in rank (= block)
// order through the sharded writer; then configs, aux files, summary, commit.
void merge_on_rank0(const Options& o, const Plan& plan, const DistPlan& dp, io::OutputDir& out,
                    const std::vector<std::string>& reports, RunSummary& summary,
                    clock::time_point t_start) {
  const auto t0 = clock::now();
  io::ModelWeights w(o.model_path);
  bool zero_zero = false;
  std::vector<std::string> v1_qzeros;
  std::vector<nlohmann::json> blocks;
  nlohmann::json ranks = nlohmann::json::array();
  for (const auto& bytes : reports) {
    const auto j = nlohmann::json::parse(bytes);
    ranks.push_back(j.at("rank_stats"));
    zero_zero |= j.at("zero_zero").get<bool>();
    for (const auto& n : j.at("v1_qzeros")) v1_qzeros.push_back(n);
    for (const auto& b : j.at("blocks")) blocks.push_back(b);
  }
  std::sort(blocks.begin(), blocks.end(), [](const auto& a, const auto& b) {
    return a.at("index").template get<int64_t>() < b.at("index").template get<int64_t>();
  });
  for (const auto& b : blocks)
    summary.add_block(b.at("index"), dist::report_as_result(b), b.at("seconds"));

  std::vector<std::string> files;
  {
    io::ShardedWriter writer(out.partial_path(), o.max_shard_size_bytes, {{"format", "pt"}},
                             weight_file_stem(o));
    for (const auto& name : plan.non_block) writer.add(name, w.get(name));
    for (int r = 0; r < dp.world; ++r) {
      const std::string f = fragment_path(dp.partial_dir, r);
      if (dp.mode == DistMode::kData && !std::filesystem::exists(f)) continue;
      add_fragment(f, writer);
    }
    files = writer.finish();
  }
  remove_fragments(dp.partial_dir);
  const auto [qs, copied] = finish_checkpoint(out, o, plan, files, zero_zero, v1_qzeros);
  summary.add_phase("write", seconds_between(t0, clock::now()));
  summary.set_output(files, copied, qs);
  summary.set_total(seconds_between(t_start, clock::now()));
  nlohmann::json sj = summary.json();
  sj["distributed"] = {{"world", dp.world}, {"mode", to_string(dp.mode)}, {"ranks", ranks}};
  for (const auto& s : ranks)
    log()->info(
        "rank {}: quantize {:.2f} s, GPU peak {:.2f} GiB, transport payload out {:.1f} MB "
        "/ in {:.1f} MB in {} calls",
        s.value("rank", -1), s.value("quantize_s", 0.0), s.value("peak_gpu_allocated_gib", 0.0),
        s.value("bytes_out", 0) / 1e6, s.value("bytes_in", 0) / 1e6, s.value("calls", 0));
  out.write_json("shardquant_summary.json", sj);
  write_salient_dump(o, summary, out);
  log()->info("{}", summary.table());
  flush_logs();
  out.commit();
  log()->info("done: {} ({} shard(s), {} ranks) in {}", out.final_path(), files.size(), dp.world,
              human_seconds(seconds_between(t_start, clock::now())));
}

int run_on(rank::Transport& t, const Options& o) {
  const auto t_start = clock::now();
  const int r = t.rank(), W = t.world();
  Plan plan;
  DistPlan dp;
  std::string bytes;
  // 1. Rank 0 plans and validates once; the others rebuild from the same command line and must
  //    match (their own view of the model directory could differ on a multi-host job).
  rank::agreed_step(t, "plan", [&] {
    if (r != 0) return;
    plan = make_plan(o);
    for (const auto& wmsg : plan.warnings) log()->warn("{}", wmsg);
    dp = make_dist_plan(plan, o, W, o.output_dir + ".partial");
    bytes = to_json(dp);
  });
  t.broadcast_bytes(bytes, 0);
  rank::agreed_step(t, "plan_check", [&] {
    if (r == 0) return;
    dp = dist_plan_from_json(bytes);
    plan = make_plan(o);
    SQ_REQUIRE(plan_digest(plan) == dp.digest,
               "rank " << r << " sees a different model at " << o.model_path
                       << " than rank 0 (plan digest " << plan_digest(plan) << " vs " << dp.digest
                       << ")");
  });
  if (o.dry_run) {
    if (r == 0) {
      std::cout << describe_plan(plan, o) << describe_dist_plan(dp, plan);
      std::cout.flush();
      log()->info("dry run: plan valid; nothing written");
    }
    return 0;
  }
  if (r == 0) log()->info("plan:\n{}{}", describe_plan(plan, o), describe_dist_plan(dp, plan));

  // 2. Output directory (rank 0), weights, calibration (rank 0 builds, all receive), embeddings.
  std::unique_ptr<io::OutputDir> out;
  RunSummary summary(o, plan);
  rank::agreed_step(t, "setup", [&] {
    if (r != 0) return;
    out = std::make_unique<io::OutputDir>(o.output_dir, o.model_path);
    dp.partial_dir = out->partial_path();
    std::filesystem::create_directories(fragments_dir(dp.partial_dir));
    if (o.log_file.empty()) add_log_file(out->file("quantize.log"));
  });
  t.broadcast_bytes(dp.partial_dir, 0);
  io::CalibSet calib;
  std::unique_ptr<io::ModelWeights> w;
  std::unique_ptr<rank::Model> model;
  const at::Device dev = run_device(o, t.local_rank());
  prepare_host_for(dev, ranks_on_this_host());
  const at::ScalarType dtype = compute_dtype(dev, plan.config, o.compute_dtype);
  rank::agreed_step(t, "calibration", [&] {
    const auto t0 = clock::now();
    calib = share_calibration(t, o);
    SQ_REQUIRE(calib.tokens.size(0) > 0, "calibration produced no samples");
    w = std::make_unique<io::ModelWeights>(o.model_path);
    if (r == 0 || dp.mode == DistMode::kData)
      model = std::make_unique<rank::Model>(*w, plan.config, dev, dtype);
    summary.set_calibration(calib.provenance, calib.tokens.size(0), calib.tokens.size(1));
    summary.add_phase("calibration", seconds_between(t0, clock::now()));
  });
  log()->info("rank {}/{}: calibration {} samples x {} tokens, --parallel {}", r, W,
              calib.tokens.size(0), calib.tokens.size(1), to_string(dp.mode));

  // 3. Quantize this rank's share and write its fragment.
  dist::RankRun run{o,
                    plan,
                    dp,
                    t,
                    *w,
                    dev,
                    dtype,
                    calib.tokens,
                    at::Tensor(),
                    micro_batch_for(o, calib.tokens.size(1)),
                    model.get()};
  if (!calib.mask.all().item<bool>()) run.mask = calib.mask.to(dev);
  dist::RankReport rep;
  // Data mode agrees inside the step (per block, per owner solve): an error raised there is
  // already the same on every rank, so it passes this step's agreement untouched and is rethrown
  // afterwards as is (naming the rank that failed, not the lowest rank that saw it).
  std::exception_ptr inner_agreed;
  double quantize_s = 0;
  rank::agreed_step(t, "quantize", [&] {
    try {
      const auto t0 = clock::now();
      rank::NamedTensors tensors = dp.mode == DistMode::kBlocks ? dist::run_blocks_mode(run, rep)
                                                                : dist::run_data_mode(run, rep);
      if (!tensors.empty()) write_fragment(fragment_path(dp.partial_dir, r), tensors);
      quantize_s = seconds_between(t0, clock::now());
      summary.add_phase("quantize blocks", quantize_s);
    } catch (const std::exception& e) {
      if (!rank::all_ranks_know(e)) throw;
      inner_agreed = std::current_exception();
    }
  });
  if (inner_agreed) std::rethrow_exception(inner_agreed);

  // 4. Reports to rank 0, which merges and commits.
  rep.rank_stats = {{"rank", r},
                    {"quantize_s", quantize_s},
                    {"peak_gpu_allocated_gib",
                     static_cast<double>(rank::device_peak_allocated(dev)) / (1ull << 30)}};
  if (const auto* c = dynamic_cast<const rank::CountingTransport*>(&t)) {
    rep.rank_stats["bytes_out"] = c->counts().bytes_out;
    rep.rank_stats["bytes_in"] = c->counts().bytes_in;
    rep.rank_stats["calls"] = c->counts().calls;
  }
  auto reports = t.gather_bytes(dist::to_json(rep).dump(), 0);
  rank::agreed_step(t, "merge", [&] {
    if (r == 0) merge_on_rank0(o, plan, dp, *out, reports, summary, t_start);
  });
  return 0;
}

}  // namespace

bool distributed_requested(const Options& o) {
  if (o.transport == TransportKind::kMpi || o.transport == TransportKind::kNccl) return true;
  // mpirun sets OMPI_COMM_WORLD_SIZE, PMI-1/2 launchers PMI_SIZE; `srun --mpi=pmix` sets neither,
  // only PMIX_RANK and the step's task count (without this, each srun task quantized on its own
  // into the same output directory).
  return env_int("OMPI_COMM_WORLD_SIZE") > 1 || env_int("PMI_SIZE") > 1 ||
         (std::getenv("PMIX_RANK") != nullptr && env_int("SLURM_STEP_NUM_TASKS") > 1);
}

int run_distributed(const Options& o) {
  // GPU ranks; CPU ranks get their share of the cores in prepare_host_for.
  if (ranks_on_this_host() > 1 && std::getenv("OMP_NUM_THREADS") == nullptr) at::set_num_threads(1);
  std::unique_ptr<rank::Transport> t = std::make_unique<rank::CountingTransport>(
      rank::make_transport(transport_for(o), {static_cast<double>(o.comm_timeout_s)}));
  set_log_rank(t->rank(), t->world());
  try {
    return run_on(*t, o);
  } catch (const std::exception& e) {
    if (!rank::all_ranks_know(e) && t->world() > 1) {
      log()->error("rank {}: {} — aborting every rank", t->rank(), e.what());
      flush_logs();
      rank::abort_unless_agreed(t.get(), e);
    }
    throw;
  }
}

}  // namespace sq::coordinator
