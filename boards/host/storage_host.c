/* storage_host.c: storage.h over a host directory with a simulated capacity and timing, atomic commit by rename. */
#include "storage_host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "postern_opts.h"
#include "storage.h"

/** Names one directory scan of storage_list() gathers (the memory of a listing, whatever the file count). */
#define SH_LIST_BATCH 16
/** Prefix of the temporary file of an upload in progress. */
#define SH_TMP_PREFIX ".upload-"
/** Prefix of a file's digest sidecar: .sha256-<name>. */
#define SH_SHA_PREFIX ".sha256-"
/*
 * An upload's bytes go to its temporary file through RAM: the core hands
 * over one received segment's payload per call (about 1460 bytes), and a
 * write() for each cost the main loop more than the whole network path. The
 * calls fill chunks of SH_CHUNK bytes, and the writer thread (below) takes
 * each full chunk to the file with one write() while the next fills. A Linux
 * process has the memory a board has not: SH_CHUNKS chunks per upload slot.
 */
#ifndef SH_CHUNK
#define SH_CHUNK (64u * 1024u)
#endif
#ifndef SH_CHUNKS
#define SH_CHUNKS 16u
#endif
/*
 * Bytes written to a temporary file before the writer starts their writeback
 * to the disk (sync_file_range, which does not wait). The commit's fsync()
 * then waits for the last of them only, not the whole file: the disk works
 * while the body still streams in.
 */
#ifndef SH_WRITEBACK_SIZE
#define SH_WRITEBACK_SIZE (1024u * 1024u)
#endif
/** Replaced versions whose release (the unlink's work) waits for the reaper thread. */
#define SH_REAP_SLOTS (2 * POSTERN_MAX_CONNS)

/*
 * The chunks of an upload slot, a ring the main loop fills and the writer
 * empties. Main loop: `fill` and the chunk at `head`. The rest is shared under
 * sh_wlock: `head` counts the chunks handed over, `tail` those the writer has
 * done, `busy` is set while it writes one, `err` is its first failure (errno;
 * 0 none), after which the slot's further chunks are dropped, and `drop`
 * makes it drop them (an abort).
 */
struct sh_ring {
  size_t fill;           /* bytes in the chunk being filled, head % SH_CHUNKS */
  uint32_t head, tail;   /* chunks handed over, chunks done */
  size_t len[SH_CHUNKS]; /* bytes of each chunk handed over */
  uint64_t at;           /* writer: bytes in the file */
  uint64_t synced;       /* writer: bytes whose writeback was started */
  int fd;                /* the temporary file, set before the first chunk */
  int err;
  bool busy, drop;
};

struct storage_upload {
  bool used;
  int fd;
  uint64_t length;  /* announced at open (reserved), or STORAGE_LEN_UNKNOWN */
  uint64_t written; /* bytes accepted: in the temporary file or on their way (sh_rings) */
  uint64_t erased;  /* bytes the medium has erased for it (timing on: writes go there at once) */
  bool commit_done; /* the medium did its commit unit: the retry of the commit renames */
  bool has_sha;     /* storage_set_sha256() gave the digest */
  uint8_t sha[32];
  char name[POSTERN_NAME_MAX + 1]; /* the final name */
};

struct storage_reader {
  bool used;
  bool has_sha;
  int fd;
  uint64_t size;
  uint8_t sha[32];
};

/*
 * A digest sidecar, .sha256-<name>: the SHA-256 and what identifies the one
 * content it belongs to (inode, size, modification time). It is written to a
 * temporary file, synced and renamed into place before the content's own
 * rename, so after a crash it either names the content that is there or
 * names another (a temporary file that never became visible, a version
 * replaced or copied in by hand): then the file has no digest. The boot scan
 * removes sidecars that name nothing, so a reused inode never meets one.
 */
typedef struct sh_sidecar {
  char magic[8];
  uint64_t ino, size;
  int64_t mtime_s, mtime_ns;
  uint8_t sha[32];
} sh_sidecar_t;

static const char sh_sidecar_magic[8] = "PSHA256";

static int sh_dirfd = -1; /* the storage directory; -1 before init */
static uint64_t sh_capacity;
static uint64_t sh_used; /* bytes of the committed files */
static struct storage_upload sh_uploads[POSTERN_MAX_CONNS];

/*
 * The writer thread: the only code here that runs beside the main loop
 * (tcpip_thread with NO_SYS 0). It touches nothing but the rings, their
 * chunks and their files' descriptors, under sh_wlock; it logs nothing (the
 * main loop reports what it found). The reaper thread closes the last
 * descriptor of versions a commit replaced: with it goes the unlink's work
 * (the old pages and blocks freed, the disk's discards), which took the
 * rename 15 ms of the main loop for a 64 MiB file. Both start with the first
 * storage_host_init() and live as long as the process.
 */
static struct sh_ring sh_rings[POSTERN_MAX_CONNS];
static uint8_t sh_chunks[POSTERN_MAX_CONNS][SH_CHUNKS][SH_CHUNK];
static pthread_mutex_t sh_wlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sh_work = PTHREAD_COND_INITIALIZER;    /* the writer: a chunk to write */
static pthread_cond_t sh_done = PTHREAD_COND_INITIALIZER;    /* the main loop: a chunk is done */
static pthread_cond_t sh_reap_cv = PTHREAD_COND_INITIALIZER; /* the reaper: a descriptor to close */
/* Who sleeps on sh_work and sh_done: a wake-up (a system call) only then, not for every chunk. */
static bool sh_writer_idle, sh_main_waits;
static int sh_reap[SH_REAP_SLOTS]; /* descriptors for the reaper */
static int sh_nreap;
static bool sh_threads;
static struct storage_reader sh_readers[POSTERN_MAX_CONNS];

/*
 * The medium's timing (storage_host_timing()). One medium, so one unit of
 * work at a time: sh_jobs[0] is on it until sh_deadline, the rest wait their
 * turn in the order they were asked for, and every call that needs the
 * medium answers STORAGE_PENDING until its own unit is done. A retry is
 * recognised by what it asks for, never by a token: a write needs the
 * upload's next unit erased (u->erased), a commit its commit unit done
 * (u->commit_done), a remove its name among sh_removed; a unit already
 * queued is not queued twice. What a unit's owner can see changes only at
 * the retry (the bytes copied, the rename, the unlink), so a caller that
 * gives up leaves everything as it was.
 */
enum sh_work { SH_ERASE, SH_COMMIT, SH_REMOVE };

struct sh_job {
  enum sh_work work;
  struct storage_upload *u;        /* erase and commit; NULL once aborted (the unit ends in the background) */
  char name[POSTERN_NAME_MAX + 1]; /* remove */
};

/** Units queued at most: an erase or a commit per upload and a remove per connection, twice over. */
#define SH_JOBS (3 * POSTERN_MAX_CONNS)

static uint32_t sh_latency_ms;         /* 0: synchronous, nothing ever pends */
static uint32_t (*sh_clock)(void);     /* NULL: sh_monotonic_ms() */
static struct sh_job sh_jobs[SH_JOBS]; /* [0] on the medium, the rest waiting */
static int sh_njobs;
static uint32_t sh_deadline; /* when sh_jobs[0] is done */
static bool sh_waiting;      /* a call pended with no unit of its own queued (the queue was full) */
static char sh_removed[POSTERN_MAX_CONNS][POSTERN_NAME_MAX + 1]; /* removes done by the medium, not yet retried */
static unsigned sh_removed_next;

/* One name of a storage_list() batch. */
struct sh_entry {
  char name[POSTERN_NAME_MAX + 1];
  uint64_t size;
};

/* Logs an unexpected syscall failure and returns STORAGE_EIO. */
static int sh_fail(const char *call, const char *name)
{
  log_line("storage: %s(%s): %s", call, name ? name : "", strerror(errno));
  return STORAGE_EIO;
}

/* True for a name this backend can hold: not empty, no '/', no leading '.'. */
static bool sh_name_ok(const char *name)
{
  return name != NULL && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
         strlen(name) <= POSTERN_NAME_MAX;
}

/* The preamble of the calls that take a name: STORAGE_EIO before init, STORAGE_EINVAL, or 0. */
static int sh_check(const char *name)
{
  return sh_dirfd < 0 ? STORAGE_EIO : sh_name_ok(name) ? STORAGE_OK : STORAGE_EINVAL;
}

/* Writes the temporary file name of upload u (.upload-<slot>) into buf. */
static void sh_tmp_name(const struct storage_upload *u, char *buf, size_t size)
{
  snprintf(buf, size, SH_TMP_PREFIX "%d", (int)(u - sh_uploads));
}

/* Size of the committed regular file `name`: 0 (size in *size), STORAGE_ENOENT or STORAGE_EIO. */
static int sh_stat(const char *name, uint64_t *size)
{
  struct stat st;
  if (fstatat(sh_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? STORAGE_ENOENT : sh_fail("fstatat", name);
  }
  if (!S_ISREG(st.st_mode)) {
    return STORAGE_ENOENT;
  }
  *size = (uint64_t)st.st_size;
  return STORAGE_OK;
}

/* The sidecar's name for `name`. */
static void sh_sha_name(const char *name, char *buf, size_t size)
{
  snprintf(buf, size, SH_SHA_PREFIX "%s", name);
}

/* True when the sidecar of `name` is intact and names the content st describes; its digest goes to out. */
static bool sh_sidecar_get(const char *name, const struct stat *st, uint8_t out[32])
{
  char side[sizeof SH_SHA_PREFIX + POSTERN_NAME_MAX + 1];
  sh_sha_name(name, side, sizeof side);
  int fd = openat(sh_dirfd, side, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return false;
  }
  sh_sidecar_t sc;
  ssize_t n = read(fd, &sc, sizeof sc);
  close(fd);
  if (n != (ssize_t)sizeof sc || memcmp(sc.magic, sh_sidecar_magic, sizeof sc.magic) != 0 ||
      sc.ino != (uint64_t)st->st_ino || sc.size != (uint64_t)st->st_size || sc.mtime_s != (int64_t)st->st_mtim.tv_sec ||
      sc.mtime_ns != (int64_t)st->st_mtim.tv_nsec) {
    return false;
  }
  if (out != NULL) {
    memcpy(out, sc.sha, sizeof sc.sha);
  }
  return true;
}

/* The committed `name`'s stat, and its digest when its sidecar names it. */
static bool sh_sha_of(const char *name, uint8_t out[32])
{
  struct stat st;
  return fstatat(sh_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
         sh_sidecar_get(name, &st, out);
}

/* Opens the storage directory itself for reading its entries. */
static DIR *sh_opendir(void)
{
  int fd = openat(sh_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    sh_fail(fd >= 0 ? "fdopendir" : "openat", ".");
    if (fd >= 0) {
      close(fd);
    }
  }
  return d;
}

/* Counts the committed files and their bytes, removing unfinished uploads; 0 or STORAGE_EIO. */
static int sh_scan(unsigned *files, unsigned *stale, uint64_t *used)
{
  DIR *d = sh_opendir();
  if (d == NULL) {
    return STORAGE_EIO;
  }
  int rc = STORAGE_OK;
  unsigned orphans = 0; /* sidecars removed */
  struct dirent *e;
  for (errno = 0; rc == STORAGE_OK && (e = readdir(d)) != NULL; errno = 0) {
    uint64_t size = 0;
    if (strncmp(e->d_name, SH_TMP_PREFIX, strlen(SH_TMP_PREFIX)) == 0) {
      /* Power-loss recovery: an upload (or its sidecar) that never reached its rename. */
      rc = unlinkat(sh_dirfd, e->d_name, 0) == 0 ? STORAGE_OK : sh_fail("unlinkat", e->d_name);
      ++*stale;
    } else if (strncmp(e->d_name, SH_SHA_PREFIX, strlen(SH_SHA_PREFIX)) == 0) {
      /* A sidecar whose content never became visible, or is gone or replaced: it goes. */
      if (!sh_sha_of(e->d_name + strlen(SH_SHA_PREFIX), NULL)) {
        rc = unlinkat(sh_dirfd, e->d_name, 0) == 0 ? STORAGE_OK : sh_fail("unlinkat", e->d_name);
        orphans++;
      }
    } else if (e->d_name[0] != '.' && (rc = sh_stat(e->d_name, &size)) != STORAGE_ENOENT) {
      ++*files;
      *used += size;
    } else {
      rc = STORAGE_OK; /* dot-files and what is no regular file */
    }
  }
  if (rc == STORAGE_OK && errno != 0) {
    rc = sh_fail("readdir", ".");
  }
  closedir(d);
  if (rc == STORAGE_OK && *stale + orphans > 0 && fsync(sh_dirfd) != 0) {
    rc = sh_fail("fsync", ".");
  }
  return rc;
}

/* The host's monotonic clock in milliseconds, wrapping at 2^32 like sys_now(). */
static uint32_t sh_monotonic_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static uint32_t sh_now(void)
{
  return sh_clock != NULL ? sh_clock() : sh_monotonic_ms();
}

/*
 * Writes len bytes at offset `at`, the end of the file fd; on a failure the
 * file is cut back to `at`. Returns 0 or the errno. Either thread.
 */
static int sh_write_at(int fd, uint64_t at, const uint8_t *p, size_t len)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, p + done, len - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      int err = n < 0 ? errno : ENOSPC;
      /* Cut back to the last whole chunk; the first failure is the one to report. */
      if (ftruncate(fd, (off_t)at) == 0) {
        (void)lseek(fd, (off_t)at, SEEK_SET);
      }
      return err;
    }
    done += (size_t)n;
  }
  return 0;
}

/* The writer thread: each ring's chunks to its file, in order, the slots in turn. */
static void *sh_writer(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&sh_wlock);
  for (unsigned next = 0;;) {
    struct sh_ring *r = NULL;
    for (unsigned k = 0; k < POSTERN_MAX_CONNS && r == NULL; k++) {
      struct sh_ring *q = &sh_rings[(next + k) % POSTERN_MAX_CONNS];
      if (q->tail != q->head) {
        r = q;
        next = (next + k + 1) % POSTERN_MAX_CONNS;
      }
    }
    if (r == NULL) {
      sh_writer_idle = true;
      pthread_cond_wait(&sh_work, &sh_wlock);
      sh_writer_idle = false;
      continue;
    }
    unsigned c = r->tail % SH_CHUNKS;
    size_t len = r->len[c];
    if (r->err == 0 && !r->drop) {
      int fd = r->fd;
      uint64_t at = r->at, synced = r->synced;
      r->busy = true;
      pthread_mutex_unlock(&sh_wlock);
      int err = sh_write_at(fd, at, sh_chunks[r - sh_rings][c], len);
      bool sync = err == 0 && at + len - synced >= SH_WRITEBACK_SIZE;
      if (sync) {
        /* Best effort, no promise: the commit's fsync() is what makes the bytes durable. */
        (void)sync_file_range(fd, (off_t)synced, (off_t)(at + len - synced), SYNC_FILE_RANGE_WRITE);
      }
      pthread_mutex_lock(&sh_wlock);
      r->busy = false;
      r->err = err;
      if (err == 0) {
        r->at = at + len;
        r->synced = sync ? r->at : synced;
      }
    }
    r->tail++;
    if (sh_main_waits) {
      pthread_cond_signal(&sh_done);
    }
  }
  return NULL;
}

/* The reaper thread: closes the replaced versions' descriptors, which releases them. */
static void *sh_reaper(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&sh_wlock);
  for (;;) {
    while (sh_nreap == 0) {
      pthread_cond_wait(&sh_reap_cv, &sh_wlock);
    }
    int fd = sh_reap[--sh_nreap];
    pthread_mutex_unlock(&sh_wlock);
    close(fd);
    pthread_mutex_lock(&sh_wlock);
  }
  return NULL;
}

/* Starts the writer and the reaper once; false when the system has no thread for them. */
static bool sh_start_threads(void)
{
  if (sh_threads) {
    return true;
  }
  pthread_t t;
  pthread_attr_t a;
  if (pthread_attr_init(&a) != 0) {
    return false;
  }
  (void)pthread_attr_setstacksize(&a, 64u * 1024u);
  (void)pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  sh_threads = pthread_create(&t, &a, sh_writer, NULL) == 0 && pthread_create(&t, &a, sh_reaper, NULL) == 0;
  pthread_attr_destroy(&a);
  return sh_threads;
}

/* Hands the release of a replaced version (its last descriptor) to the reaper; the main loop's own when it is full. */
static void sh_release(int fd)
{
  pthread_mutex_lock(&sh_wlock);
  bool queued = sh_nreap < SH_REAP_SLOTS;
  if (queued) {
    sh_reap[sh_nreap++] = fd;
    pthread_cond_signal(&sh_reap_cv);
  }
  pthread_mutex_unlock(&sh_wlock);
  if (!queued) {
    close(fd);
  }
}

/** Sets the medium's latency and clock; see storage_host.h. */
void storage_host_timing(uint32_t latency_ms, uint32_t (*clock_ms)(void))
{
  sh_latency_ms = latency_ms;
  sh_clock = clock_ms;
  if (latency_ms > 0) {
    log_line("storage: the medium is busy %u ms for each %u bytes erased, each commit and each remove",
             (unsigned)latency_ms, STORAGE_HOST_UNIT);
  }
}

/*
 * A call needs the medium for a unit of work (an erase or a commit of u, a
 * remove of name): queues that unit unless it is queued already (the call is
 * a retry), and answers STORAGE_PENDING either way. The first unit of an idle
 * medium starts now.
 */
static int sh_pend(enum sh_work work, struct storage_upload *u, const char *name)
{
  for (int i = 0; i < sh_njobs; i++) {
    if (sh_jobs[i].work == work && sh_jobs[i].u == u && (name == NULL || strcmp(sh_jobs[i].name, name) == 0)) {
      return STORAGE_PENDING;
    }
  }
  if (sh_njobs == SH_JOBS) {
    sh_waiting = true; /* told when a unit ends, and asks again */
    return STORAGE_PENDING;
  }
  struct sh_job *j = &sh_jobs[sh_njobs++];
  j->work = work;
  j->u = u;
  j->name[0] = '\0';
  if (name != NULL) {
    memcpy(j->name, name, strlen(name) + 1); /* fits: sh_name_ok() */
  }
  if (sh_njobs == 1) {
    sh_deadline = sh_now() + sh_latency_ms;
  }
  return STORAGE_PENDING;
}

/* An upload goes (commit or abort): its waiting units go too, the one on the medium ends in the background. */
static void sh_forget(const struct storage_upload *u)
{
  int k = 0;
  for (int i = 0; i < sh_njobs; i++) {
    if (sh_jobs[i].u != u) {
      sh_jobs[k++] = sh_jobs[i];
    } else if (i == 0) {
      sh_jobs[k] = sh_jobs[0];
      sh_jobs[k++].u = NULL;
    }
  }
  sh_njobs = k;
}

/* True (and forgotten) when the medium did a remove of `name` that was not retried yet. */
static bool sh_removed_take(const char *name)
{
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (strcmp(sh_removed[i], name) == 0) {
      sh_removed[i][0] = '\0';
      return true;
    }
  }
  return false;
}

/** Ends the unit on the medium when its time has come, starts the next and calls storage_ready(); see storage.h. */
uint32_t storage_poll(void)
{
  if (sh_njobs == 0) {
    return STORAGE_POLL_IDLE;
  }
  uint32_t now = sh_now();
  int32_t left = (int32_t)(sh_deadline - now);
  if (left > 0) {
    return (uint32_t)left;
  }
  struct sh_job done = sh_jobs[0];
  sh_njobs--;
  memmove(&sh_jobs[0], &sh_jobs[1], (size_t)sh_njobs * sizeof sh_jobs[0]);
  sh_deadline = now + sh_latency_ms; /* the next unit starts now */
  bool ready = sh_waiting;
  if (done.work == SH_REMOVE) {
    memcpy(sh_removed[sh_removed_next], done.name, sizeof done.name);
    sh_removed_next = (sh_removed_next + 1) % POSTERN_MAX_CONNS; /* the oldest unretried one falls out */
    ready = true;
  } else if (done.u != NULL) {
    if (done.work == SH_ERASE) {
      done.u->erased += STORAGE_HOST_UNIT;
    } else {
      done.u->commit_done = true;
    }
    ready = true;
  }
  if (ready) {
    sh_waiting = false;
    storage_ready(); /* may ask for more units */
  }
  if (sh_njobs == 0) {
    return STORAGE_POLL_IDLE;
  }
  left = (int32_t)(sh_deadline - sh_now());
  return left > 0 ? (uint32_t)left : 0;
}

/** Serves storage.h from `dir` with `capacity` bytes; see storage_host.h. */
int storage_host_init(const char *dir, uint64_t capacity)
{
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    storage_abort(&sh_uploads[i]); /* from a previous init: free slots do nothing */
    storage_read_close(&sh_readers[i]);
  }
  sh_njobs = 0; /* units left from a previous init: aborted above, or removes nobody retries now */
  sh_waiting = false;
  memset(sh_removed, 0, sizeof sh_removed);
  if (sh_dirfd >= 0) {
    close(sh_dirfd);
  }
  sh_capacity = sh_used = 0;
  if (!sh_start_threads()) {
    log_line("storage: cannot start the writer thread");
    return -1;
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    log_line("storage: cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  sh_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sh_dirfd < 0) {
    log_line("storage: cannot open %s: %s", dir, strerror(errno));
    return -1;
  }
  unsigned files = 0, stale = 0;
  uint64_t used = 0;
  if (sh_scan(&files, &stale, &used) != STORAGE_OK) {
    log_line("storage: %s: cannot scan the directory", dir);
    close(sh_dirfd);
    sh_dirfd = -1;
    return -1;
  }
  sh_capacity = capacity;
  sh_used = used;
  char extra[64] = "";
  if (stale > 0) {
    snprintf(extra, sizeof extra, ", removed %u unfinished upload%s", stale, stale == 1 ? "" : "s");
  }
  log_line("storage: %s: %u file%s, %llu of %llu bytes used%s%s", dir, files, files == 1 ? "" : "s",
           (unsigned long long)used, (unsigned long long)capacity,
           used > capacity ? " (over capacity: nothing free)" : "", extra);
  return 0;
}

/** Bytes the medium holds in all. */
uint64_t storage_capacity(void)
{
  return sh_capacity;
}

/* Bytes an upload in progress takes: its reservation for a known length, what it wrote for chunked. */
static uint64_t sh_taken(const struct storage_upload *u)
{
  return u->length != STORAGE_LEN_UNKNOWN ? u->length : u->written;
}

/** Capacity less committed files, less every reservation, less what chunked uploads wrote. */
uint64_t storage_free(void)
{
  uint64_t taken = sh_used;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (sh_uploads[i].used) {
      taken += sh_taken(&sh_uploads[i]);
    }
  }
  return taken >= sh_capacity ? 0 : sh_capacity - taken;
}

/*
 * Asks the real disk for a reserved upload's bytes too, so that a full host
 * disk refuses the upload at open (STORAGE_ENOSPC) rather than mid-stream,
 * as the simulated capacity does. KEEP_SIZE: the file still grows by the
 * writes, so commit and scans see only what was written. Best effort: a
 * file system without fallocate keeps the old behaviour (a full real disk
 * then shows as STORAGE_ENOSPC from storage_write()).
 */
static int sh_preallocate(int fd, uint64_t length, const char *tmp)
{
  if (length == 0 || length == STORAGE_LEN_UNKNOWN || length > (uint64_t)INT64_MAX) {
    return STORAGE_OK;
  }
  while (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)length) != 0) {
    if (errno == EINTR) {
      continue;
    }
    if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG) {
      log_line("storage: fallocate(%s, %llu): %s", tmp, (unsigned long long)length, strerror(errno));
      return STORAGE_ENOSPC; /* the real disk cannot hold it */
    }
    return STORAGE_OK; /* EOPNOTSUPP and the like: no preallocation here */
  }
  return STORAGE_OK;
}

/** True when `name` is committed; its size goes to *size when size is not NULL. */
bool storage_exists(const char *name, uint64_t *size)
{
  uint64_t n;
  if (sh_dirfd < 0 || !sh_name_ok(name) || sh_stat(name, &n) != STORAGE_OK) {
    return false;
  }
  if (size != NULL) {
    *size = n;
  }
  return true;
}

/** Starts an upload of `name` into its slot's temporary file; see storage.h. */
int storage_open(const char *name, uint64_t length, storage_upload_t **out)
{
  int rc = sh_check(name);
  if (rc != STORAGE_OK) {
    return rc;
  }
  struct storage_upload *u = NULL;
  for (int i = 0; i < POSTERN_MAX_CONNS; i++) {
    if (sh_uploads[i].used && strcmp(sh_uploads[i].name, name) == 0) {
      return STORAGE_EBUSY; /* the name is being written */
    }
    if (!sh_uploads[i].used && u == NULL) {
      u = &sh_uploads[i];
    }
  }
  if (u == NULL) {
    return STORAGE_EBUSY; /* every upload slot is taken */
  }
  /* The reservation: from here on storage_free() is `length` lower, until commit or abort. */
  if (length != STORAGE_LEN_UNKNOWN && length > storage_free()) {
    return STORAGE_ENOSPC;
  }
  char tmp[32];
  sh_tmp_name(u, tmp, sizeof tmp);
  int fd = openat(sh_dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    return sh_fail("openat", tmp);
  }
  rc = sh_preallocate(fd, length, tmp);
  if (rc != STORAGE_OK) {
    close(fd);
    if (unlinkat(sh_dirfd, tmp, 0) != 0) {
      sh_fail("unlinkat", tmp);
    }
    return rc;
  }
  u->used = true;
  u->fd = fd;
  u->length = length;
  u->written = 0;
  u->erased = 0;
  u->commit_done = false;
  u->has_sha = false;
  memcpy(u->name, name, strlen(name) + 1); /* fits: sh_name_ok() */
  struct sh_ring *r = &sh_rings[u - sh_uploads];
  pthread_mutex_lock(&sh_wlock); /* the writer is done with the slot: its last upload drained */
  r->fill = 0;
  r->head = r->tail = 0;
  r->at = r->synced = 0;
  r->fd = fd;
  r->err = 0;
  r->drop = false;
  pthread_mutex_unlock(&sh_wlock);
  *out = u;
  return STORAGE_OK;
}

/* The result of a writer's errno, logged as the failed write() it was. */
static int sh_write_failed(const storage_upload_t *u, int err)
{
  if (err == ENOSPC || err == EDQUOT) {
    log_line("storage: write(%s): %s", u->name, strerror(err));
    return STORAGE_ENOSPC; /* the real disk is full */
  }
  errno = err;
  return sh_fail("write", u->name);
}

/*
 * Hands the chunk being filled to the writer and waits until the next one
 * is free (all on their way: the disk is slower than the network, the wait
 * the write() itself was before); when `drain`, until the writer has done
 * every chunk of the slot. Returns the writer's first failure (nothing
 * handed over then) or STORAGE_OK.
 */
static int sh_hand_over(storage_upload_t *u, bool drain)
{
  struct sh_ring *r = &sh_rings[u - sh_uploads];
  pthread_mutex_lock(&sh_wlock);
  if (r->err == 0 && r->fill > 0) {
    r->len[r->head % SH_CHUNKS] = r->fill;
    r->head++;
    r->fill = 0;
  }
  if (sh_writer_idle && r->tail != r->head) {
    /* Every whole chunk goes to the disk at once: a client that pauses leaves at most one chunk in RAM. */
    pthread_cond_signal(&sh_work);
  }
  /* The chunk to fill next must be free (not still being written); a drain waits for them all. */
  while ((r->err == 0 && r->head - r->tail == SH_CHUNKS) || (drain && r->tail != r->head)) {
    sh_main_waits = true;
    pthread_cond_wait(&sh_done, &sh_wlock);
    sh_main_waits = false;
  }
  int err = r->err;
  pthread_mutex_unlock(&sh_wlock);
  return err == 0 ? STORAGE_OK : sh_write_failed(u, err);
}

/** Appends bytes (through the writer to the temporary file); on any failure nothing of this call is kept (pending: its unit is erased first). */
int storage_write(storage_upload_t *u, const void *data, size_t len)
{
  if (u->length != STORAGE_LEN_UNKNOWN) {
    /* Reserved at open: within the announced length the space is there, past it nothing is. */
    if (len > u->length - u->written) {
      return STORAGE_ENOSPC;
    }
  } else if (len > storage_free()) {
    return STORAGE_ENOSPC; /* chunked: the quota is checked as the bytes come */
  }
  if (sh_latency_ms > 0 && len > 0 && u->written + len > u->erased) {
    return sh_pend(SH_ERASE, u, NULL); /* the next unit is erased first; then the same write goes in */
  }
  struct sh_ring *r = &sh_rings[u - sh_uploads];
  const uint8_t *p = data;
  for (size_t done = 0; done < len;) {
    if (r->fill == SH_CHUNK) {
      int rc = sh_hand_over(u, false);
      if (rc != STORAGE_OK) {
        return rc; /* a chunk before this call failed; the core aborts the upload */
      }
    }
    size_t n = len - done < SH_CHUNK - r->fill ? len - done : SH_CHUNK - r->fill;
    memcpy(&sh_chunks[u - sh_uploads][r->head % SH_CHUNKS][r->fill], p + done, n);
    r->fill += n;
    done += n;
  }
  if (sh_latency_ms > 0) {
    /* A timed medium shows its progress in the file (tests watch it): each write goes through at once. */
    int rc = sh_hand_over(u, true);
    if (rc != STORAGE_OK) {
      return rc;
    }
  }
  u->written += len;
  return STORAGE_OK;
}

/** Keeps the digest for the commit's sidecar. */
void storage_set_sha256(storage_upload_t *u, const uint8_t sha256[32])
{
  memcpy(u->sha, sha256, sizeof u->sha);
  u->has_sha = true;
}

/*
 * Puts the sidecar of the upload's content in place (synced), before the
 * content's rename. A failure is logged and leaves the file without a
 * digest: an old sidecar names the old content, never the new one.
 */
static void sh_sidecar_put(storage_upload_t *u)
{
  char side[sizeof SH_SHA_PREFIX + POSTERN_NAME_MAX + 1], tmp[40];
  sh_sha_name(u->name, side, sizeof side);
  if (!u->has_sha) {
    if (unlinkat(sh_dirfd, side, 0) != 0 && errno != ENOENT) {
      sh_fail("unlinkat", side);
    }
    return;
  }
  struct stat st;
  if (fstat(u->fd, &st) != 0) {
    sh_fail("fstat", u->name);
    return;
  }
  sh_sidecar_t sc;
  memset(&sc, 0, sizeof sc);
  memcpy(sc.magic, sh_sidecar_magic, sizeof sc.magic);
  sc.ino = (uint64_t)st.st_ino;
  sc.size = (uint64_t)st.st_size;
  sc.mtime_s = (int64_t)st.st_mtim.tv_sec;
  sc.mtime_ns = (int64_t)st.st_mtim.tv_nsec;
  memcpy(sc.sha, u->sha, sizeof sc.sha);
  snprintf(tmp, sizeof tmp, SH_TMP_PREFIX "%d.sha256", (int)(u - sh_uploads));
  int fd = openat(sh_dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    sh_fail("openat", tmp);
    return;
  }
  bool ok = write(fd, &sc, sizeof sc) == (ssize_t)sizeof sc && fsync(fd) == 0;
  close(fd);
  if (!ok || renameat(sh_dirfd, tmp, sh_dirfd, side) != 0) {
    sh_fail(ok ? "renameat" : "write", tmp);
    unlinkat(sh_dirfd, tmp, 0);
  }
}

/** True when committed `name` has a sidecar that names its content. */
bool storage_sha256(const char *name, uint8_t out[32])
{
  return sh_check(name) == STORAGE_OK && sh_sha_of(name, out);
}

/** The digest the reader found at its open. */
bool storage_read_sha256(storage_reader_t *r, uint8_t out[32])
{
  if (r->has_sha) {
    memcpy(out, r->sha, sizeof r->sha);
  }
  return r->has_sha;
}

/* Drops a failed commit's upload and passes its result on. */
static int sh_commit_fail(storage_upload_t *u, int rc)
{
  storage_abort(u);
  return rc;
}

/** Syncs the temporary file, renames it over the name and syncs the directory; frees u unless pending. */
int storage_commit(storage_upload_t *u, bool *replaced)
{
  if (sh_latency_ms > 0 && !u->commit_done) {
    return sh_pend(SH_COMMIT, u, NULL); /* u and *replaced untouched, nothing visible */
  }
  sh_forget(u);
  char tmp[32];
  sh_tmp_name(u, tmp, sizeof tmp);
  if (replaced != NULL) {
    *replaced = false;
  }
  int rc = sh_hand_over(u, true); /* every byte in the file */
  if (rc != STORAGE_OK) {
    return sh_commit_fail(u, rc);
  }
  if (fsync(u->fd) != 0) {
    return sh_commit_fail(u, sh_fail("fsync", tmp));
  }
  uint64_t old = 0;
  int s = sh_stat(u->name, &old); /* ENOENT: a new name, old stays 0 */
  if (s == STORAGE_EIO) {
    return sh_commit_fail(u, s);
  }
  sh_sidecar_put(u); /* first: a crash before the rename leaves no digest, never a wrong one */
  /* The old version, held open across the rename: its release is then the reaper's close, not the rename's. */
  int old_fd = s == STORAGE_OK ? openat(sh_dirfd, u->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
  if (renameat(sh_dirfd, tmp, sh_dirfd, u->name) != 0) {
    if (old_fd >= 0) {
      close(old_fd);
    }
    return sh_commit_fail(u, sh_fail("renameat", u->name));
  }
  if (old_fd >= 0) {
    sh_release(old_fd);
  }
  /* The new version is in place: account for it whatever follows. */
  sh_used = (sh_used > old ? sh_used - old : 0) + u->written;
  if (replaced != NULL) {
    *replaced = s == STORAGE_OK;
  }
  close(u->fd);
  u->used = false;
  if (fsync(sh_dirfd) != 0) {
    return sh_fail("fsync", "."); /* visible now, but not known to be durable */
  }
  return STORAGE_OK;
}

/** Drops the temporary file; the previous version is untouched. Frees u; NULL does nothing. */
void storage_abort(storage_upload_t *u)
{
  if (u == NULL || !u->used) {
    return;
  }
  sh_forget(u);
  struct sh_ring *r = &sh_rings[u - sh_uploads];
  pthread_mutex_lock(&sh_wlock);
  r->drop = true; /* the chunks on their way are dropped; the one being written ends first */
  if (sh_writer_idle && r->tail != r->head) {
    pthread_cond_signal(&sh_work);
  }
  while (r->tail != r->head || r->busy) {
    sh_main_waits = true;
    pthread_cond_wait(&sh_done, &sh_wlock);
    sh_main_waits = false;
  }
  pthread_mutex_unlock(&sh_wlock);
  char tmp[32];
  sh_tmp_name(u, tmp, sizeof tmp);
  close(u->fd);
  if (unlinkat(sh_dirfd, tmp, 0) != 0 && errno != ENOENT) {
    sh_fail("unlinkat", tmp);
  }
  u->used = false;
}

/** Removes a committed file (pending: after its unit); readers that have it open keep reading it. */
int storage_remove(const char *name)
{
  int rc = sh_check(name);
  if (rc != STORAGE_OK) {
    return rc;
  }
  uint64_t size;
  rc = sh_stat(name, &size);
  if (rc != STORAGE_OK) {
    return rc;
  }
  if (sh_latency_ms > 0 && !sh_removed_take(name)) {
    return sh_pend(SH_REMOVE, NULL, name); /* still there */
  }
  if (unlinkat(sh_dirfd, name, 0) != 0) {
    return errno == ENOENT ? STORAGE_ENOENT : sh_fail("unlinkat", name);
  }
  sh_used = size > sh_used ? 0 : sh_used - size;
  char side[sizeof SH_SHA_PREFIX + POSTERN_NAME_MAX + 1];
  sh_sha_name(name, side, sizeof side);
  if (unlinkat(sh_dirfd, side, 0) != 0 && errno != ENOENT) {
    sh_fail("unlinkat", side); /* left behind: it names nothing, the next scan removes it */
  }
  return STORAGE_OK;
}

/** Opens a committed file for reading from a reader slot; see storage.h. */
int storage_read_open(const char *name, storage_reader_t **out, uint64_t *size)
{
  int rc = sh_check(name);
  if (rc != STORAGE_OK) {
    return rc;
  }
  int fd = openat(sh_dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return errno == ENOENT || errno == ELOOP ? STORAGE_ENOENT : sh_fail("openat", name);
  }
  struct stat st;
  rc = fstat(fd, &st) != 0 ? sh_fail("fstat", name) : S_ISREG(st.st_mode) ? STORAGE_OK : STORAGE_ENOENT;
  for (int i = 0; rc == STORAGE_OK && i < POSTERN_MAX_CONNS; i++) {
    if (!sh_readers[i].used) {
      sh_readers[i].used = true;
      sh_readers[i].fd = fd;
      sh_readers[i].size = (uint64_t)st.st_size;
      sh_readers[i].has_sha = sh_sidecar_get(name, &st, sh_readers[i].sha);
      *out = &sh_readers[i];
      if (size != NULL) {
        *size = (uint64_t)st.st_size;
      }
      return STORAGE_OK;
    }
  }
  close(fd);
  return rc == STORAGE_OK ? STORAGE_EBUSY : rc; /* EBUSY: every reader slot is taken */
}

/** Reads up to len bytes at the reader's position; returns the count (0 at the end) or a negative result. */
long storage_read(storage_reader_t *r, void *buf, size_t len)
{
  if (len > LONG_MAX) {
    len = LONG_MAX;
  }
  for (;;) {
    ssize_t n = read(r->fd, buf, len);
    if (n >= 0) {
      return (long)n;
    }
    if (errno != EINTR) {
      return sh_fail("read", "reader");
    }
  }
}

/** Moves the reader's file offset; see storage.h. */
int storage_read_seek(storage_reader_t *r, uint64_t offset)
{
  if (offset > r->size) {
    return STORAGE_EINVAL;
  }
  return lseek(r->fd, (off_t)offset, SEEK_SET) < 0 ? sh_fail("lseek", "reader") : STORAGE_OK;
}

/** Closes a reader and frees its slot; NULL does nothing. */
void storage_read_close(storage_reader_t *r)
{
  if (r != NULL && r->used) {
    close(r->fd);
    r->used = false;
  }
}

/* Inserts (name, size) into the sorted batch of *count entries (at most SH_LIST_BATCH, the largest falls out). */
static void sh_batch_insert(struct sh_entry *batch, size_t *count, const char *name, uint64_t size)
{
  size_t at = *count;
  while (at > 0 && strcmp(name, batch[at - 1].name) < 0) {
    at--;
  }
  size_t keep = *count < SH_LIST_BATCH ? *count : SH_LIST_BATCH - 1;
  memmove(&batch[at + 1], &batch[at], (keep - at) * sizeof batch[0]);
  memcpy(batch[at].name, name, strlen(name) + 1); /* fits: sh_name_ok() */
  batch[at].size = size;
  if (*count < SH_LIST_BATCH) {
    ++*count;
  }
}

/*
 * One scan of the directory: the SH_LIST_BATCH smallest committed names
 * greater than `after` (all names when after is NULL), sorted, into batch.
 * Returns the count or STORAGE_EIO.
 */
static long sh_list_scan(const char *after, struct sh_entry *batch)
{
  DIR *d = sh_opendir();
  if (d == NULL) {
    return STORAGE_EIO;
  }
  size_t count = 0;
  struct dirent *e;
  for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
    const char *n = e->d_name;
    uint64_t size;
    if (!sh_name_ok(n) || (after != NULL && strcmp(n, after) <= 0) ||
        (count == SH_LIST_BATCH && strcmp(n, batch[count - 1].name) >= 0)) {
      continue; /* dot-files and unreachable names, listed already, or not among the smallest */
    }
    if (sh_stat(n, &size) != STORAGE_OK) {
      continue; /* directories and the like, or gone meanwhile */
    }
    sh_batch_insert(batch, &count, n, size);
  }
  int err = errno;
  closedir(d);
  if (err != 0) {
    errno = err;
    return sh_fail("readdir", ".");
  }
  return (long)count;
}

/*
 * Calls fn for every committed file in byte order of names; see storage.h.
 *
 * readdir() returns names in no useful order and the directory may hold any
 * number of files, while the memory here must stay bounded. So each pass
 * scans the whole directory for the SH_LIST_BATCH smallest names greater than
 * the last one visited, then visits them with the directory closed (fn may
 * write, replace or remove files). n files take n / SH_LIST_BATCH + 1 scans,
 * O(n^2 / SH_LIST_BATCH) entries read: nothing for a device folder of a few
 * hundred files, and no limit on the count. Each name is looked at again
 * just before its call, so a file fn removed meanwhile is not visited.
 */
int storage_list(int (*fn)(void *ctx, const char *name, uint64_t size), void *ctx)
{
  if (sh_dirfd < 0) {
    return STORAGE_EIO;
  }
  struct sh_entry batch[SH_LIST_BATCH];
  char last[POSTERN_NAME_MAX + 1];
  bool first = true;
  for (;;) {
    long count = sh_list_scan(first ? NULL : last, batch);
    if (count < 0) {
      return (int)count; /* logged; after some calls the caller knows the listing is incomplete */
    }
    for (long i = 0; i < count; i++) {
      uint64_t size;
      memcpy(last, batch[i].name, strlen(batch[i].name) + 1);
      first = false;
      if (sh_stat(last, &size) != STORAGE_OK) {
        continue; /* removed since the scan */
      }
      int rc = fn(ctx, last, size);
      if (rc != 0) {
        return rc;
      }
    }
    if (count < SH_LIST_BATCH) {
      return 0; /* that scan found every remaining name */
    }
  }
}
