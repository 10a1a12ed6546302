/* shard.h - splitting one mirror list over N processes (hosts, a
 * Kubernetes Indexed Job, a Slurm array): process K of N takes the entries
 * whose reference hashes to K.
 *
 * The hash is FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3), followed by SplitMix64's finaliser (x ^= x >> 30;
 * x *= 0xbf58476d1ce4e5b9; x ^= x >> 27; x *= 0x94d049bb133111eb;
 * x ^= x >> 31: FNV-1a's low bits depend only on the low bits of each byte,
 * so without it "1.0", "1.4" and "1.8" would share a shard of 4), over the
 * bytes of the entry's reference as
 * "<registry>/<repository>:<tag>" (or "...@<digest>") after normalisation
 * (ref.h: "docker.io" is "registry-1.docker.io", Docker Hub's one-part names
 * get "library/"), so every process and host puts a reference in the same
 * shard whatever way LIST spells it. An entry belongs to shard
 * (hash mod N) + 1. A line that does not parse hashes its text instead, so
 * exactly one shard reports it. */
#ifndef OC_ENGINE_IMAGE_SHARD_H
#define OC_ENGINE_IMAGE_SHARD_H

#include <stdint.h>

#include "engine/image/ref.h"
#include "io/error.h"

typedef struct oc_shard {
    unsigned k; /* 1..n */
    unsigned n; /* 0 or 1: no sharding */
} oc_shard;

/* "K/N" with 1 <= K <= N <= 65536; OC_E_USAGE otherwise (what names the
 * option or variable in the message). */
int oc_shard_parse(const char *text, const char *what, oc_shard *s, oc_error *err);
/* FNV-1a of bytes, then the finaliser. */
uint64_t oc_shard_hash(const char *bytes);
/* Whether this process takes key (always, without sharding). */
int oc_shard_takes(const oc_shard *s, const char *key);
/* ... the reference ref (its normalised string as above). */
int oc_shard_takes_ref(const oc_shard *s, const oc_ref *ref);

#endif
