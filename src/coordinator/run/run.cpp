// The run's skeleton: transport, plan agreement, calibration broadcast, the quantization step of
// the chosen mode, and the merge on rank 0. Each phase is one agreed_step so that a failure
// anywhere becomes the same error on every rank (no rank is left waiting); the modes live in
// run_blocks.cpp / run_data.cpp, the per-block step in rank/worker/block_step.h.
#include "coordinator/run/run.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "common/check.h"
#include "common/fs_util.h"
#include "common/host_memory.h"
#include "common/interrupt.h"
#include "common/log.h"
#include "coordinator/run/checkpoint.h"
#include "coordinator/run/merge.h"
#include "coordinator/run/run_internal.h"
#include "io/hdf5/hdf5_record.h"
#include "io/model/release_pages.h"
#include "io/output/output_dir.h"
#include "io/tokenizer/tokenizer.h"
#include "rank/device/device.h"
#include "rank/transport/transport_counting.h"
#include "rank/transport/transport_local.h"

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

// Rank 0's calibration set, built inside an agreed step (so that its failure stops every rank at
// once) and then broadcast, so that every rank holds identical tokens (and a --calib-cache file
// is written by one process only).
io::CalibSet make_calibration(rank::Transport& t, const Options& o) {
  io::CalibSet calib;
  rank::agreed_step(t, "calibration", [&] {
    if (t.rank() != 0) return;
    auto tok = io::Tokenizer::load(o.model_path);
    calib = io::build_calibration(calib_options(o), *tok);
    for (const auto& wmsg : calib.warnings) log()->warn("calibration: {}", wmsg);
    SQ_REQUIRE(calib.tokens.size(0) > 0, "calibration produced no samples");
    test_kill_point("calibration");
  });
  if (t.world() == 1) return calib;
  std::string head;
  if (t.rank() == 0)
    head = nlohmann::json{{"n", calib.tokens.size(0)},
                          {"T", calib.tokens.size(1)},
                          {"provenance", calib.provenance},
                          {"from_cache", calib.from_cache}}
               .dump();
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

// What a rank other than 0 sends rank 0 after its quantization step: its blocks' summary entries
// (the summary's own JSON, added as they are), its final calibration shape and its statistics.
nlohmann::json rank_report(const run::RankOutcome& res, const nlohmann::json& stats) {
  return {{"blocks", res.blocks.blocks},
          {"salient", res.blocks.salient},
          {"host_memory", res.blocks.host_memory},
          {"samples", res.samples},
          {"seq_len", res.seq_len},
          {"rank_stats", stats}};
}

// Rank 0 after every rank succeeded: the other ranks' block entries into the summary, the
// calibration shape finally used, then non-block tensors and every block's fragment in block order
// through the sharded writer (which decides the GPTQ version first); configs, aux files, summary,
// commit.
void merge_on_rank0(const Options& o, const Plan& plan, const DistPlan& dp, io::OutputDir& out,
                    std::unique_ptr<io::ShardedWriter> direct, const run::RankOutcome& mine,
                    const nlohmann::json& my_stats, const std::vector<std::string>& reports,
                    const io::CalibSet& calib, RunSummary& summary, clock::time_point t_start) {
  const auto t0 = clock::now();
  nlohmann::json ranks = nlohmann::json::array({my_stats});
  summary.add_blocks(mine.blocks.blocks, mine.blocks.salient, mine.blocks.host_memory);
  int64_t samples = mine.samples, seq_len = mine.seq_len;
  for (size_t r = 1; r < reports.size(); ++r) {
    const auto j = nlohmann::json::parse(reports[r]);
    ranks.push_back(j.at("rank_stats"));
    summary.add_blocks(j.at("blocks"), j.at("salient"), j.at("host_memory"));
    const int64_t s = j.at("samples"), T = j.at("seq_len");
    // Data mode: every rank holds its share of the samples (all at the same, agreed seq_len);
    // blocks mode: every rank holds all of them, at the seq_len its own back-off left.
    if (dp.mode == DistMode::kData) {
      samples += s;
    } else if (T < seq_len) {
      samples = s;
      seq_len = T;
    }
  }
  const int64_t n = calib.tokens.size(0), T = calib.tokens.size(1);
  if (seq_len != T) {
    log()->warn("calibration seq_len finally used: {} ({} sequences; requested {} x {})", seq_len,
                samples, n, T);
    summary.set_calibration(calib.provenance, samples, seq_len);
  }

  std::vector<std::string> files;
  io::Format written = o.format;
  test_kill_point("merge");
  if (direct) {
    files = direct->finish();  // every block is in it already (the version was known)
  } else {
    io::ModelWeights w(o.model_path);
    std::vector<std::string> fragments;
    for (size_t i = 0; i < plan.blocks.size(); ++i) {
      fragments.push_back(fragment_path(dp.partial_dir, static_cast<int64_t>(i)));
      SQ_CHECK(
          std::filesystem::exists(fragments.back()),
          "block " << i << " was quantized but its fragment " << fragments.back() << " is missing");
    }
    io::ShardedWriter writer(out.partial_path(), o.max_shard_size_bytes, {{"format", "pt"}},
                             weight_file_stem(o));
    for (const auto& name : plan.non_block) writer.add(name, w.get(name));
    io::release_pages(w, plan.non_block);  // written (spilled) already
    written = merge_fragments(fragments, writer, o.bits, o.format);
    files = writer.finish();
  }
  test_kill_point("merged");
  const auto [qs, copied] = finish_checkpoint(out, o, plan, written);
  // The peaks so far include the write (the last shard assembled from its spill file).
  {
    const HostRss peaks = sampled_host_peaks();
    const double gib = 1.0 / (1ull << 30);
    summary.add_blocks(nlohmann::json::array(), nlohmann::json::object(),
                       {{"peak_rss_gib", peaks.peak * gib},
                        {"peak_rss_anon_gib", peaks.anon * gib},
                        {"peak_rss_file_gib", peaks.file * gib}});
    log()->info(
        "host memory: peak RSS {:.3f} GiB (VmHWM), sampled peaks {:.3f} GiB anonymous, "
        "{:.3f} GiB file-backed",
        peaks.peak * gib, peaks.anon * gib, peaks.file * gib);
  }
  summary.add_phase("write", seconds_between(t0, clock::now()));
  summary.set_output(files, copied, qs);
  summary.set_total(seconds_between(t_start, clock::now()));
  nlohmann::json sj = summary.json();
  // Blocks taken from checkpoints of interrupted runs, and the block time they had taken
  // (ranks work side by side: the longest rank's).
  // Blocks forwarded again to rebuild the chain's input are counted apart (checkpoint.h).
  int64_t resumed = 0, recomputed = 0;
  double saved_s = 0, recompute_s = 0;
  for (const auto& s : ranks) {
    resumed += s.value("resumed_blocks", int64_t{0});
    recomputed += s.value("recomputed_blocks", int64_t{0});
    saved_s = std::max(saved_s, s.value("resumed_s", 0.0));
    recompute_s = std::max(recompute_s, s.value("recompute_s", 0.0));
  }
  if (resumed > 0) {
    sj["resume"] = {{"resumed_blocks", resumed},
                    {"time_saved_s", saved_s},
                    {"recomputed_blocks", recomputed},
                    {"recompute_s", recompute_s}};
    log()->info(
        "resumed: {} of {} blocks from the checkpoint ({} of block time saved; {} block(s) "
        "forwarded again in {} to rebuild the activations)",
        resumed, plan.blocks.size(), human_seconds(saved_s), recomputed,
        human_seconds(recompute_s));
  }
  if (dp.world > 1) {
    sj["distributed"] = {{"world", dp.world}, {"mode", to_string(dp.mode)}, {"ranks", ranks}};
    for (const auto& s : ranks)
      log()->info(
          "rank {}: quantize {:.2f} s, GPU peak {:.2f} GiB, transport payload out {:.1f} MB "
          "/ in {:.1f} MB in {} calls",
          s.value("rank", -1), s.value("quantize_s", 0.0), s.value("peak_gpu_allocated_gib", 0.0),
          s.value("bytes_out", 0) / 1e6, s.value("bytes_in", 0) / 1e6, s.value("calls", 0));
  }
  out.write_json("shardquant_summary.json", sj);
  write_salient_dump(o, summary, out);
  log()->info("{}", summary.table());
  flush_logs();
  // The checkpoint goes first: a kill after it leaves a partial directory that a rerun starts
  // over (never a checkpoint whose fragments are gone).
  sq::remove_tree(checkpoint_dir(dp.partial_dir));
  test_kill_point("uncheckpointed");
  remove_fragments(dp.partial_dir);
  out.commit();
  log()->info("done: {} ({} shard(s){}) in {}", out.final_path(), files.size(),
              dp.world > 1 ? ", " + std::to_string(dp.world) + " ranks" : std::string(),
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
  if (W > 1) {
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
  }
  const std::string dist_lines = W > 1 ? describe_dist_plan(dp, plan) : std::string();
  if (o.dry_run) {
    if (r == 0) {
      std::cout << describe_plan(plan, o) << dist_lines;
      std::cout.flush();
      log()->info("dry run: plan valid; nothing written");
    }
    return 0;
  }
  if (r == 0) log()->info("plan:\n{}{}", describe_plan(plan, o), dist_lines);

  // 2. Output directory (rank 0), device, calibration (rank 0 builds, all receive), embeddings.
  std::unique_ptr<io::OutputDir> out;
  RunSummary summary(o, plan);
  rank::agreed_step(t, "setup", [&] {
    if (r != 0) return;
    // The partial directory is kept until it is known to hold no checkpoint (issue 22).
    out = std::make_unique<io::OutputDir>(o.output_dir, o.model_path, /*resume=*/true);
    dp.partial_dir = out->partial_path();
    const auto ckpts = checkpoint_files(dp.partial_dir);
    if (!ckpts.empty() && !o.resume)
      SQ_THROW(InputError, dp.partial_dir
                               << " holds the checkpoint of an interrupted run (" << ckpts.front()
                               << "): rerun with --resume (RESUME=1) to continue it, or remove "
                               << dp.partial_dir << " to start over");
    if (ckpts.empty()) {
      if (o.resume)
        log()->info("--resume: no checkpoint in {}; starting from the first block", dp.partial_dir);
      out->clear_partial();
    }
    if (o.log_file.empty()) add_log_file(out->file("quantize.log"));
  });
  if (W > 1) t.broadcast_bytes(dp.partial_dir, 0);
  const at::Device dev = run_device(o, t.local_rank());
  prepare_host_for(dev, ranks_on_this_host());
  const at::ScalarType dtype = compute_dtype(dev, plan.config, o.compute_dtype);
  if (r == 0)
    log()->info("quantizing {} ({}, {} blocks) with {} {} on {} ({}), output {}", o.model_path,
                plan.architecture, plan.blocks.size(), to_string(o.method), o.scheme().describe(),
                dev.str(), c10::toString(dtype), o.output_dir);
  auto t0 = clock::now();
  io::CalibSet calib = make_calibration(t, o);
  const int64_t n = calib.tokens.size(0), T = calib.tokens.size(1);
  if (r == 0) {
    log()->info("calibration: {} samples x {} tokens{}", n, T,
                calib.from_cache ? " (from cache)" : "");
    // The same provenance the calibration cache keys on (tokenizer hash, sources, split,
    // seed…) goes into quantize.log and shardquant_summary.json of the output.
    log()->info("calibration provenance: {}", calib.provenance.dump());
  }
  if (W > 1)
    log()->info("rank {}/{}: calibration {} samples x {} tokens, --parallel {}", r, W, n, T,
                to_string(dp.mode));
  summary.set_calibration(calib.provenance, n, T);
  std::unique_ptr<io::ModelWeights> w;
  std::unique_ptr<rank::Model> model;
  rank::agreed_step(t, "weights", [&] {
    w = std::make_unique<io::ModelWeights>(o.model_path);
    if (r == 0 || dp.mode == DistMode::kData)
      model = std::make_unique<rank::Model>(*w, plan.config, dev, dtype);
    test_kill_point("load");
  });
  summary.add_phase("calibration", seconds_between(t0, clock::now()));

  // Resume (issue 22): this rank's checkpoint, refused unless it was written by this very run
  // (model, options, calibration, ranks, mode).
  const nlohmann::json fingerprint = run_fingerprint(o, plan, dp, calib.provenance, dtype, dev);
  std::optional<Checkpoint> ckpt = run::find_resume_checkpoint(t, o, dp, fingerprint);

  // 3. Quantize this rank's share, each block's tensors into the shards or its fragment.
  run::RankRun rr{o,
                  plan,
                  dp,
                  t,
                  *w,
                  dev,
                  dtype,
                  calib.tokens,
                  at::Tensor(),
                  model.get(),
                  step_settings(o, plan),
                  nullptr,
                  nullptr,
                  {}};
  if (!calib.mask.all().item<bool>()) rr.mask = calib.mask.to(dev);
  // One rank whose checkpoint version is known up front streams the blocks straight into the
  // shards (written once); otherwise each block becomes a fragment, merged by rank 0 at the end.
  // The direct writer's shards are only complete once closed: each block's tensors also go to
  // a fragment until every one of them is in a closed shard (so that a resume can add the
  // pending ones again), and the checkpoint records the closed shards.
  std::unique_ptr<io::ShardedWriter> direct;
  std::map<int64_t, std::vector<std::string>> pending;  // block -> tensor names (direct)
  if (W == 1 && format_known_before_solves(rr.step.export_opts)) {
    direct = std::make_unique<io::ShardedWriter>(
        out->partial_path(), o.max_shard_size_bytes,
        std::map<std::string, std::string>{{"format", "pt"}}, weight_file_stem(o));
    direct->keep_closed_shards();
    std::filesystem::create_directories(fragments_dir(dp.partial_dir));
    if (ckpt && ckpt->writer.is_object()) direct->restore(ckpt->writer);
    for (const auto& name : plan.non_block)
      if (!direct->is_closed(name)) direct->add(name, w->get(name));
    // Written (spilled) already: their mapped pages (embeddings, output head) leave the
    // resident set; rank::Model holds its own copies of what it computes with.
    io::release_pages(*w, plan.non_block);
    for (int64_t i = 0; ckpt && i < ckpt->next; ++i) {
      const std::string path = fragment_path(dp.partial_dir, i);
      if (!std::filesystem::exists(path)) continue;  // all its tensors are in closed shards
      FragmentContent c = read_fragment(path);
      rank::NamedTensors open;
      for (auto& [name, tensor] : c.tensors) {
        pending[i].push_back(name);
        if (!direct->is_closed(name)) open.emplace_back(name, tensor);
      }
      add_block(*direct, open, c.unpacked_qzeros, o.bits, o.format);
    }
    const int bits = o.bits;
    const io::Format format = o.format;
    io::ShardedWriter* writer = direct.get();
    const std::string partial = dp.partial_dir;
    rr.sink = [writer, bits, format, partial, &pending](
                  int64_t i, rank::NamedTensors&& tensors,
                  const std::vector<std::string>& unpacked_qzeros) {
      write_fragment(fragment_path(partial, i), tensors, unpacked_qzeros);
      test_kill_point("write", i);
      add_block(*writer, tensors, unpacked_qzeros, bits, format);
      for (const auto& [name, t] : tensors) pending[i].push_back(name);
    };
  } else {
    const std::string partial = dp.partial_dir;
    std::filesystem::create_directories(fragments_dir(partial));
    rr.sink = [partial](int64_t i, rank::NamedTensors&& tensors,
                        const std::vector<std::string>& unpacked_qzeros) {
      write_fragment(fragment_path(partial, i), tensors, unpacked_qzeros);
      test_kill_point("write", i);
    };
  }
  if (ckpt) rr.resumed = &*ckpt;
  CheckpointWriter ckpt_writer;  // joined before it is destroyed (a signal's unwinding included)
  // The checkpoint callback's state; it outlives the callback (captured by reference).
  auto last_activations = clock::now();
  int64_t written_next = -1;  // `next` of the last record written
  double record_s = 0;        // time spent writing records (their cost to the run)
  int64_t records = 0;
  {
    // Blocks mode: the rank's range, a record after each block plus activations generations
    // (checkpoint.h). Data mode: every block, one file per generation (run_data.cpp prunes).
    const bool data = dp.mode == DistMode::kData;
    const int64_t L = static_cast<int64_t>(plan.blocks.size());
    const BlockRange range = data ? BlockRange{0, L} : dp.ranges.at(r);
    io::ShardedWriter* writer = direct.get();
    const std::string partial = dp.partial_dir;
    const CheckpointPolicy policy{static_cast<double>(o.checkpoint_every_s)};
    const bool recompute = run::chain_recomputable(rr);
    // Recomputing the chain under --propagate quant reads the blocks' fragments.
    const bool needs_fragments = recompute && !rr.step.propagate_fp();
    rr.checkpoint = [&, data, range, L, writer, partial, policy, recompute, needs_fragments](
                        int64_t next, const rank::CalibActivations* a,
                        const run::RankOutcome& so_far, bool force) {
      // The last block's output feeds nothing on the last rank; on an earlier rank of a relay
      // the next rank needs it again after a restart.
      const bool with_x = a != nullptr && (next < range.last || (!data && r + 1 < W));
      if (!data && force && next == written_next) return;
      written_next = next;
      Checkpoint c;
      c.fingerprint = fingerprint;
      c.rank = r;
      c.first = range.first;
      c.last = range.last;
      c.next = next;
      c.blocks_total = L;
      c.blocks = so_far.blocks.blocks;
      c.salient = so_far.blocks.salient;
      c.host_memory = so_far.blocks.host_memory;
      c.samples = so_far.samples;
      c.seq_len = so_far.seq_len;
      c.seq_lens = so_far.seq_lens;
      c.times = so_far.times;
      if (data) {
        // Every generation, whole: the pruning and the resume's choice (the largest generation
        // every rank holds) count on all ranks writing the same ones.
        if (with_x) {
          c.x = a->x;
          c.mask = a->mask;
        }
        ckpt_writer.write(data_checkpoint_path(partial, r, next), std::move(c),
                          [next] { test_kill_point("checkpointed", next - 1); });
        if (force) ckpt_writer.flush();
        return;
      }
      if (writer) c.writer = writer->closed_state();
      // A chain that cannot be recomputed needs this block's output on disk before the record
      // that says the block is done; one that can gets a generation now and then, never on a
      // stop (a resume recomputes the rest).
      const bool x_now =
          with_x && (!recompute || (!force && policy.activations_due(
                                                  seconds_between(last_activations, clock::now()),
                                                  ckpt_writer.busy())));
      Checkpoint gen;  // the record's identity and shape, plus the activations
      if (x_now) {
        gen = c;
        gen.x = a->x;
        gen.mask = a->mask;
      }
      if (x_now && !recompute) {
        ckpt_writer.write(activations_path(partial, r, next), std::move(gen), {});
        ckpt_writer.flush();
      }
      const auto tr = clock::now();
      if (!io::concurrent_records_safe()) ckpt_writer.flush();
      write_checkpoint(checkpoint_path(partial, r), c);
      record_s += seconds_between(tr, clock::now());
      ++records;
      test_kill_point("checkpointed", next - 1);
      // What the record can resume from: the newest generation up to `next` (else the range's
      // first block). Older generations go; in direct mode so do the fragments whose tensors all
      // sit in closed shards, except those a recompute from that generation reads.
      const int64_t from = std::max(range.first, newest_activations(partial, r, next));
      remove_activations_below(partial, r, from);
      for (auto it = pending.begin(); writer != nullptr && it != pending.end();) {
        bool closed = !needs_fragments || it->first < from;
        for (const auto& name : it->second) closed = closed && writer->is_closed(name);
        if (!closed) {
          ++it;
          continue;
        }
        std::error_code ec;  // a file already gone is what was wanted
        std::filesystem::remove(fragment_path(partial, it->first), ec);
        it = pending.erase(it);
      }
      if (x_now && recompute) {
        last_activations = clock::now();
        // Once on disk it is the newest generation the record (already written) can use.
        ckpt_writer.write(activations_path(partial, r, next), std::move(gen), [partial, r, next] {
          remove_activations_below(partial, r, next);
          test_kill_point("activations", next - 1);
        });
        if (policy.every_s <= 0) ckpt_writer.flush();
      }
    };
  }
  run::RankOutcome res;
  // Data mode agrees inside the step (per block, per owner solve): an error raised there is
  // already the same on every rank, so it passes this step's agreement untouched and is rethrown
  // afterwards as is (naming the rank that failed, not the lowest rank that saw it).
  std::exception_ptr inner_agreed;
  double quantize_s = 0;
  install_interrupt_handlers();
  rank::agreed_step(t, "quantize", [&] {
    try {
      t0 = clock::now();
      if (dp.mode == DistMode::kBlocks)
        run::run_blocks_mode(rr, res);
      else
        run::run_data_mode(rr, res);
      quantize_s = seconds_between(t0, clock::now());
    } catch (const std::exception& e) {
      if (W == 1 || !rank::all_ranks_know(e)) throw;
      inner_agreed = std::current_exception();
    }
  });
  if (inner_agreed) std::rethrow_exception(inner_agreed);
  rank::agreed_step(t, "checkpoint", [&] { ckpt_writer.flush(); });
  const double checkpoint_s = ckpt_writer.seconds_waited() + record_s;
  if (r == 0)
    log()->info(
        "checkpoints: {} records in {:.2f} s ({:.1f} ms each); activations: {:.2f} s waited for, "
        "{:.2f} s written in the background",
        records, record_s, records ? 1e3 * record_s / records : 0.0, ckpt_writer.seconds_waited(),
        ckpt_writer.seconds_writing());
  if (W > 1 && res.seq_len != T)
    log()->warn(
        "rank {}: calibration seq_len finally used: {} ({} sequences here; requested {} x "
        "{})",
        r, res.seq_len, res.samples, n, T);
  summary.add_phase("quantize blocks", quantize_s);
  summary.add_phase("block load", res.times.load);
  summary.add_phase("quantization only", res.times.quant_only);
  summary.add_phase("export", res.times.export_);
  summary.add_phase("checkpoint", checkpoint_s);
  const double peak_gib = static_cast<double>(rank::device_peak_allocated(dev)) / (1ull << 30);
  if (dev.is_cuda()) summary.set_value("peak_gpu_allocated_gib", peak_gib);

  // 4. Reports to rank 0, which merges and commits.
  nlohmann::json stats = {{"rank", r},
                          {"quantize_s", quantize_s},
                          {"block_load_s", res.times.load},
                          {"quantization_only_s", res.times.quant_only},
                          {"export_s", res.times.export_},
                          {"peak_gpu_allocated_gib", peak_gib},
                          {"checkpoint_s", checkpoint_s},
                          {"resumed_blocks", res.resumed_blocks},
                          {"resumed_s", res.resumed_seconds},
                          {"recomputed_blocks", res.recomputed_blocks},
                          {"recompute_s", res.recompute_seconds}};
  if (const auto* c = dynamic_cast<const rank::CountingTransport*>(&t)) {
    stats["bytes_out"] = c->counts().bytes_out;
    stats["bytes_in"] = c->counts().bytes_in;
    stats["calls"] = c->counts().calls;
  }
  // Rank 0 keeps its own outcome as it is; only the other ranks' travel.
  const auto reports = t.gather_bytes(r == 0 ? std::string() : rank_report(res, stats).dump(), 0);
  rank::agreed_step(t, "merge", [&] {
    if (r == 0)
      merge_on_rank0(o, plan, dp, *out, std::move(direct), res, stats, reports, calib, summary,
                     t_start);
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

int run_quantize(const Options& o) {
  std::unique_ptr<rank::Transport> t;
  if (distributed_requested(o)) {
    // GPU ranks; CPU ranks get their share of the cores in prepare_host_for.
    if (ranks_on_this_host() > 1 && std::getenv("OMP_NUM_THREADS") == nullptr)
      at::set_num_threads(1);
    t = std::make_unique<rank::CountingTransport>(
        rank::make_transport(transport_for(o), {static_cast<double>(o.comm_timeout_s)}));
    set_log_rank(t->rank(), t->world());
  } else {
    t = rank::make_local_transport({static_cast<double>(o.comm_timeout_s)});
  }
  try {
    return run_on(*t, o);
  } catch (const std::exception& e) {
    // Stopped on a signal: exit now with 128 + signal, not after a shutdown handshake that the
    // launcher, already killing the job, may never answer (then no log line and a SIGKILL).
    if (t->world() > 1 && rank::all_ranks_know(e) && dynamic_cast<const Interrupted*>(&e))
      t->leave_unsynchronized();
    if (!rank::all_ranks_know(e) && t->world() > 1) {
      log()->error("rank {}: {} — aborting every rank", t->rank(), e.what());
      flush_logs();
      rank::abort_unless_agreed(t.get(), e);
    }
    throw;
  }
}

}  // namespace sq::coordinator
