// The quantization run (DESIGN.md §1, issue 6, issue 18): one driver for every launch. A plain
// process is a run of one rank over the local transport; under mpirun (or with --transport
// mpi|nccl) every process is one rank of the same run.
//
// CONTRACT
//   * distributed_requested(o): true under mpirun with more than one rank (OMPI_COMM_WORLD_SIZE
//     or PMI_SIZE > 1) or when --transport mpi|nccl is given explicitly.
//   * run_quantize(o) runs the whole command on every rank: rank 0 makes and validates the plan
//     (and, with several ranks, broadcasts the distributed plan; the other ranks rebuild the plan
//     from the same command line and check it against rank 0's digest). --dry-run: rank 0 prints
//     the plan (and the distributed plan). Otherwise rank 0 builds the calibration set and every
//     rank receives it; every rank quantizes its share (--parallel blocks|data|auto, protocol.h;
//     one rank: blocks) with the per-block step (rank/worker/block_step.h), writing each block's
//     tensors as a fragment; rank 0 merges (merge.h), writes configs and the summary and commits
//     `<output>.partial` to `<output>` after all ranks succeeded. One rank whose format (GPTQ
//     v1 or v2) cannot depend on the solves (merge.h format_known_before_solves) writes the
//     blocks straight into the shards instead — the same bytes, written once.
//     Every step ends with agreed statuses: a failure on any rank (calibration included) makes
//     every rank throw the failing rank's error (exit non-zero); a rank that stops answering is
//     caught by the --comm-timeout deadline and the job is aborted. With one rank errors
//     propagate unchanged. Returns 0 on every rank on success.
//   * Unless OMP_NUM_THREADS is set, ranks that share a host share its cores: on a GPU one
//     intra-op thread each, on the CPU an equal share (prepare_host_for), so that they do not
//     oversubscribe them.
#pragma once

#include "coordinator/options/options.h"

namespace sq::coordinator {

bool distributed_requested(const Options& o);
int run_quantize(const Options& o);

}  // namespace sq::coordinator
