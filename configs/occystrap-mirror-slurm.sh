#!/bin/bash
# Slurm job array: one mirror list split over 4 tasks into one store.
#
#   sbatch configs/occystrap-mirror-slurm.sh
#
# Task i of the array (SLURM_ARRAY_TASK_ID 1..4) runs `occystrap --shard i/4`:
# every entry of the list is mirrored by exactly one task (DESIGN.md 7.4 states
# the hash). The tasks may run on different nodes.
#
# STORE must be on a file system that every node mounts read-write at the same
# path (NFS, Lustre, GPFS/Spectrum Scale, CephFS) and that supports O_EXCL
# creation, atomic rename and flock(2) across nodes (Lustre: mount with
# -o flock; NFS: working lockd or NFSv4): occystrap's catalog and per-blob locks
# rely on them, so that a layer shared by images in different shards is
# downloaded once. A task killed by the scheduler leaves the store consistent;
# the next run (or a requeued task) continues it.
#SBATCH --job-name=occystrap-mirror
#SBATCH --array=1-4
#SBATCH --cpus-per-task=2
#SBATCH --mem=512M
#SBATCH --time=02:00:00
#SBATCH --output=/srv/occystrap/logs/mirror-%A-%a.log
set -euo pipefail

STORE=${STORE:-/srv/occystrap/store}
CONFIG=${CONFIG:-/etc/occystrap/occystrap.json}
LIST=${LIST:-/etc/occystrap/images.txt}
SHARDS=${SLURM_ARRAY_TASK_COUNT:-4}
mkdir -p /srv/occystrap/reports

exec occystrap --config "$CONFIG" --progress plain --lock-wait 3600 \
  --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}" \
  --json-file "/srv/occystrap/reports/${SLURM_ARRAY_JOB_ID:-0}-${SLURM_ARRAY_TASK_ID}.json" \
  mirror "$LIST" "$STORE"
