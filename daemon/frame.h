/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Logging-channel frames (ftd <-> ftd over TCP). All fields little-endian.
 *
 *   +---------------------------+  0
 *   | struct ft_frame_hdr (48)  |  sent in clear, authenticated as AEAD
 *   |                           |  associated data (crc32c field as 0)
 *   +---------------------------+ 48
 *   | payload                   |  encrypted (XChaCha20-Poly1305) once the
 *   |                           |  session is up; clear in the handshake
 *   +---------------------------+
 *   | tag (16)                  |  Poly1305 tag; absent in the handshake
 *   +---------------------------+ len
 *
 * crc32c covers the whole frame as sent (with the field itself as 0). It is
 * a cheap first check that tells corruption apart from forgery in the log;
 * the integrity guarantee is the AEAD tag.
 *
 * counter numbers the frames of one direction of one session from 1 and is
 * the AEAD nonce; the receiver accepts exactly the next one, so replayed,
 * dropped or reordered frames are refused.
 *
 * Payloads:
 *   HELLO        struct ft_hello (client -> server)
 *   HELLO_REPLY  struct ft_hello with proof (server -> client)
 *   PROOF        32-byte proof (client -> server)
 *   LOG          `count` complete uapi records, seq first_seq..first_seq+count-1
 *   ACK          struct ft_ack; first_seq = the highest contiguous seq stored
 *   HEARTBEAT    struct ft_heartbeat (it carries the primary's EMITTED value
 *                to the backup: a stale value only makes the new primary
 *                re-emit a few outputs twice, which the output rule allows;
 *                and the planned-failover handshake, repeated in every
 *                heartbeat until it changes, so it survives reconnects;
 *                and re-protection's result messages, the same way)
 *   SNAP         re-protection (live node -> returning node): struct
 *                ft_snap, then one chunk of the snapshot; first_seq = the
 *                chunk's byte offset
 *   SNAP_END     struct ft_snap_end: the total length and the BLAKE2b-256
 *                hash of the whole snapshot; first_seq = the total length
 */
#ifndef FTD_FRAME_H
#define FTD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FT_FRAME_MAGIC		0x434c5446u	/* "FTLC" */
#define FT_FRAME_VERSION	1u
#define FT_FRAME_TAG		16u
#define FT_FRAME_MAX		(1u << 20)	/* largest frame a receiver takes */

enum ft_frame_type {
	FT_F_HELLO = 1,
	FT_F_HELLO_REPLY = 2,
	FT_F_PROOF = 3,
	FT_F_LOG = 4,
	FT_F_ACK = 5,
	FT_F_HEARTBEAT = 6,
	FT_F_SNAP = 7,
	FT_F_SNAP_END = 8,
	FT_F_TYPE_MAX = 8,
};

struct ft_frame_hdr {
	uint32_t magic;
	uint32_t len;		/* whole frame: header, payload, tag */
	uint16_t type;		/* enum ft_frame_type */
	uint16_t flags;		/* 0 */
	uint32_t count;		/* records in a LOG frame, else 0 */
	uint64_t epoch;		/* sender's epoch: fences stale peers */
	uint64_t first_seq;	/* LOG: seq of the first record; ACK: acked seq */
	uint64_t counter;	/* per-direction frame number from 1; 0 in the handshake */
	uint32_t crc32c;
	uint32_t reserved;	/* 0 */
};
_Static_assert(sizeof(struct ft_frame_hdr) == 48, "frame header size");

struct ft_hello {
	uint32_t version;	/* FT_FRAME_VERSION */
	uint32_t node_id;
	uint8_t nonce[32];	/* fresh random per connection attempt */
	uint8_t proof[32];	/* HELLO_REPLY only, else 0 */
	uint32_t flags;		/* enum ft_hello_flags; part of the session secret */
	uint32_t reserved;	/* 0 */
};

/*
 * Re-protection's handshake (README "Re-protection"). A node fenced by the
 * disk (its epoch was decided for the peer while it was away) asks to be
 * seeded; a node live alone with a VM offers a seed. A session between them
 * starts only if one asks and the other offers, the asker's epoch not newer
 * than the offerer's (the asker then takes the offerer's epoch for the
 * session); a request to a node that does not offer, or an offer to a node
 * that does not ask, is refused (FT_REASON=seed-refused) on both sides.
 */
enum ft_hello_flags {
	FT_HELLO_SEED_REQUEST	= 1u << 0,
	FT_HELLO_SEED_OFFER	= 1u << 1,
	FT_HELLO_FLAGS		= FT_HELLO_SEED_REQUEST | FT_HELLO_SEED_OFFER,
};

struct ft_snap {
	uint64_t total;		/* the whole snapshot's length (the same in every chunk) */
	uint64_t reserved;	/* 0 */
};

struct ft_snap_end {
	uint64_t total;
	uint8_t hash[32];	/* BLAKE2b-256 of the whole snapshot (sync.h) */
};

struct ft_ack {
	uint64_t acked_seq;	/* highest contiguous seq stored by the backup */
	uint64_t bytes;		/* record bytes stored so far (statistics) */
};

struct ft_heartbeat {
	uint64_t sent_ns;	/* sender's CLOCK_MONOTONIC */
	uint64_t echo_ns;	/* last sent_ns received from the peer (RTT) */
	uint32_t role;		/* sender's enum ft_role */
	uint32_t reserved;
	uint64_t head_seq;	/* primary: last seq read from the ring */
	uint64_t echo_hold_ns;	/* how long echo_ns waited here before this frame */
	uint64_t emitted_seq;	/* primary: its VMM's last EMITTED (every output with
				 * record seq <= it has left the primary's host) */
	/* planned failover (enum ft_fo_wire), for the attempt fo_id */
	uint32_t fo_state;
	uint32_t fo_reserved;
	uint64_t fo_id;		/* random per attempt, chosen by the primary */
	uint64_t fo_seq;	/* S: the primary's PAUSED seq */
	uint64_t fo_epoch;	/* SWAPPED: the epoch written on the disk */
	/* re-protection (enum ft_sy_wire) */
	uint32_t sy_state;
	uint32_t sy_reserved;
	uint64_t sy_epoch;	/* DONE: the epoch written on the disk */
};

/*
 * The planned-failover handshake in heartbeats (node.c drives it):
 *   primary HANDOVER(id, S)   paused at S, every record <= S acked and every
 *                             output <= S emitted: take over at S
 *   backup  CATCHING(id, S)   taken: pausing at S, then the disk step
 *   backup  ABORTED(id, S)    refused or abandoned before the disk step
 *   backup  SWAPPED(id, S, E) won the ballot and wrote epoch E naming itself
 *                             primary and the sender of HANDOVER backup
 */
enum ft_fo_wire {
	FT_FO_NONE = 0,
	FT_FO_HANDOVER = 1,
	FT_FO_CATCHING = 2,
	FT_FO_ABORTED = 3,
	FT_FO_SWAPPED = 4,
	FT_FO_WIRE_MAX = FT_FO_SWAPPED,
};

/*
 * Re-protection's results in heartbeats (node.c drives them):
 *   returning node  SEEDED     its VMM built the VM from the snapshot and
 *                              attached it in REPLAY
 *   returning node  REFUSED    the snapshot or the SEED was refused (its log
 *                              says why); it halts
 *   live node       DONE(E)    won the ballot and wrote epoch E naming itself
 *                              primary and the returning node backup
 *   live node       ABORTED    gave the sync up (its log says why); live alone
 */
enum ft_sy_wire {
	FT_SY_NONE = 0,
	FT_SY_SEEDED = 1,
	FT_SY_REFUSED = 2,
	FT_SY_DONE = 3,
	FT_SY_ABORTED = 4,
	FT_SY_WIRE_MAX = FT_SY_ABORTED,
};

struct ft_fo_msg {
	uint32_t state;		/* enum ft_fo_wire */
	uint64_t id, seq, epoch;
};

const char *ft_frame_type_name(unsigned int type);
/* CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2. */
uint32_t ft_frame_crc32c(uint32_t crc, const void *buf, size_t len);
/* CRC32C of a complete frame with the crc32c field taken as zero. */
uint32_t ft_frame_crc(const void *frame, size_t len);
/* Check magic, length bounds and type of a received header. */
int ft_frame_check_hdr(const struct ft_frame_hdr *h, uint32_t max_len, const char **why);

#endif
