/* fuzz_conn_fakes.h: the fake altcp transport and in-memory storage behind fuzz_conn.c. */
#ifndef POSTERN_FUZZ_CONN_FAKES_H
#define POSTERN_FUZZ_CONN_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lwip/altcp.h"

/* Prints why and aborts, so the fuzzer reports the input. */
#define FUZZ_CHECK(cond, why)             \
  do {                                    \
    if (!(cond)) {                        \
      fuzz_fail(__FILE__, __LINE__, why); \
    }                                     \
  } while (0)
void fuzz_fail(const char *file, int line, const char *why);

/* ---- Fake altcp (fake_altcp.c) ------------------------------------------ */

/** Connection pcbs one input may open (slots are never reused within an input):
 *  room for a flood well beyond POSTERN_MAX_CONNS. */
#define FA_MAX_PCBS 32
/** Bytes of each direction kept per pcb for the checks. */
#define FA_REC_MAX 16384
/** Clock reads one callback may make before the fake calls it a spin: a loop
 *  that makes no progress (a zero-length pbuf it never gets past) reads the
 *  clock on every turn, and a hang would only end at libFuzzer's -timeout. */
#define FA_CLOCK_READS_MAX 100000

typedef struct fa_pcb {
  struct altcp_pcb pcb; /* first: the pointer handed out */
  bool used;            /* the slot was handed out in this input */
  bool alive;           /* the application may still use it */
  bool peer_fin;        /* the peer sent FIN: no more data */
  bool fin_pending;     /* that FIN waits behind refused data, as lwIP flags it on refused_data */
  bool shut_tx;         /* the application sent FIN */
  bool aborted;         /* altcp_abort() was called on it */
  bool deaf;            /* the peer stopped reading: it never acknowledges again */
  u8_t prio;            /* last altcp_setprio() */
  struct pbuf *refused; /* what the recv callback refused: lwIP's refused_data, retried later */
  uint32_t snd_cap;     /* send buffer the pcb offers (TCP_SND_BUF; less when lwIP is starved) */
  uint32_t unacked;     /* bytes written and not acknowledged */
  uint16_t segs[64];    /* queued segments (FIFO of byte counts) */
  uint32_t seg_head, seg_count;
  uint64_t delivered, recved, written;
  uint32_t acks_now;       /* ack_now() calls: the ACK was asked to leave at once */
  uint32_t pbufs_held_max; /* pbufs handed over while alive (an upper bound of what it may hold) */
  size_t in_len, out_len;
  ip_addr_t ip;
  u16_t port;
  /* Last, so that a new pcb clears only the fields above. */
  uint8_t in[FA_REC_MAX];  /* bytes delivered, first FA_REC_MAX */
  uint8_t out[FA_REC_MAX]; /* bytes written, first FA_REC_MAX */
} fa_pcb_t;

extern fa_pcb_t fa_pcbs[FA_MAX_PCBS];
/** The pcb whose callback runs now (NULL outside callbacks). */
extern fa_pcb_t *fa_current;
/** Set: the next altcp_close() fails with ERR_MEM. */
extern bool fa_close_fails_next;
/** Clock reads since the outermost callback began (sys_now() counts them). */
extern uint32_t fa_clock_reads;
/** Pcbs handed out in this input: fa_pcbs[0..fa_opened) are used. */
extern int fa_opened;

/** Forgets every connection pcb (all must be dead); the listener stays. */
void fa_reset(void);
/** A new connection through the listener's accept callback; -1 when none is possible. */
int fa_open(void);
/** Hands a pbuf chain to pcb k's recv callback; its bytes are recorded. What
 *  the callback refuses stays with the pcb, as lwIP's refused data. */
void fa_deliver(int k, struct pbuf *p);
/** lwIP's retry of refused data (every segment that arrives, and tcp_fasttmr):
 *  true when nothing is refused any more. */
bool fa_retry_refused(int k);
/** The peer's FIN (recv with NULL); behind refused data it waits for that. */
void fa_fin(int k);
/** The peer acknowledges up to n bytes; calls the sent callback. A deaf peer acknowledges nothing. */
void fa_ack(int k, uint32_t n);
/** One second of lwIP's timers: refused data is retried, then every live pcb's poll callback runs. */
void fa_poll_all(void);
/** The peer resets: lwIP frees the pcb, then calls the err callback. */
void fa_rst(int k);
/** Live connection pcbs. */
int fa_live(void);
/** Pool pbufs the fake holds for the connections (refused data). */
uint32_t fa_pbufs_held(void);

/* ---- Fake storage (fake_storage_mem.c) ------------------------------------ */

enum fs_fault { FS_FAULT_NONE, FS_FAULT_OPEN, FS_FAULT_WRITE, FS_FAULT_COMMIT, FS_FAULT_READ, FS_FAULT_REMOVE };

/* The calls a busy medium answers with STORAGE_PENDING (fs_pend's mask). */
enum {
  FS_PEND_OPEN = 1,   /* storage_open */
  FS_PEND_WRITE = 2,  /* storage_write */
  FS_PEND_COMMIT = 4, /* storage_commit */
  FS_PEND_REMOVE = 8, /* storage_remove */
  FS_PEND_READ = 16,  /* storage_read */
  FS_PEND_ALL = 31,
};

/** True while storage_ready() runs: the core calls storage from no lwIP callback then. */
extern bool fs_in_ready;
/** storage_ready() calls so far. */
extern uint32_t fs_readies;

/** Forgets every file and handle state; sets the capacity. */
void fs_reset(uint64_t capacity);
/** Adds a committed file whose bytes stay the caller's: they must outlive the input. */
void fs_add(const char *name, const uint8_t *data, size_t len);
/** The next operation of kind f fails (EIO; ENOSPC for writes when enospc). */
void fs_inject(enum fs_fault f, bool enospc);
/** Aborts unless no upload or reader is open. */
void fs_check_idle(void);
/**
 * The medium is busy until `until_ms` (sys_now()): the calls of the kinds in
 * `mask` answer STORAGE_PENDING meanwhile. storage_poll() ends it then and
 * calls storage_ready() when a call pended; mask 0 ends it at once.
 */
void fs_pend(unsigned mask, uint32_t until_ms);
/** The medium's work ends now (if done), then storage_poll(); with anyway, storage_ready() is called even if
 *  the medium stays busy (the retries pend again, as the contract allows). */
void fs_poll(bool done, bool anyway);
/** True once an open or a write answered STORAGE_PENDING since fs_reset(): an upload has waited on the medium. */
bool fs_uploads_waited(void);
/** True when a commit produced this SHA-256 (hex) in the current input. */
bool fs_committed_digest(const char *hex);

#endif /* POSTERN_FUZZ_CONN_FAKES_H */
