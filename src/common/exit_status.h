// The process's exit status as a file, for launchers that cannot report it themselves.
//
// Slurm's srun exits 0 when a step fails to launch ("task 0 launch failed: Unspecified error",
// e.g. a requeued job restarting while the previous step's PMIx socket is still bound), so a
// batch script cannot tell "quantized" from "never ran" by srun's exit code. When
// SHARDQUANT_STATUS_DIR is set, every process writes its exit code as one decimal line to
// <dir>/rank-<r>.status, r = its launcher rank (PMIX_RANK, OMPI_COMM_WORLD_RANK, PMI_RANK or
// SLURM_PROCID; 0 without a launcher), atomically (a temporary name, then rename), just before
// it exits normally. The directory may be node-local: a step that ran leaves a file from each of
// its ranks on that node. A crash (a fatal signal) writes nothing; the launcher then sees the
// signal in its own exit code.
#pragma once

namespace sq {

// Writes `code` to $SHARDQUANT_STATUS_DIR/rank-<r>.status when the variable is set. Never
// throws; a failed write is reported on stderr and otherwise ignored (the exit code still
// reaches the launcher).
void write_exit_status(int code) noexcept;

}  // namespace sq
