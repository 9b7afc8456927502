/* rtos_host.c: the host simulator's RTOS mode (NO_SYS 0): tcpip_thread runs lwIP and postern, a slirp thread the wire, a storage thread the medium's clock. */
#include "rtos_host.h"

#if !NO_SYS
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "lwip/sys.h"
#include "lwip/tcpip.h"
#include "lwip/timeouts.h"
#include "postern.h"
#include "slirp_netif.h"

/*
 * Who touches what:
 * - tcpip_thread (lwIP's): lwIP and its timers, the netif's output, and all
 *   of postern: connections, the policy VM, TLS, the storage backend (every
 *   storage call and storage_poll(), hence storage_ready()), log_line().
 * - The slirp thread: libslirp, its sockets and timers, the receive queue
 *   (slirp_netif.c). It takes pool pbufs and posts them with tcpip_input();
 *   lwIP's pools and counters it shares are under SYS_ARCH_PROTECT.
 * - The storage thread: only the medium's clock. It sleeps until the next
 *   step postern_poll() asked for is due, or a storage call pended (the
 *   wrappers below wake it), then has tcpip_thread run postern_poll() and
 *   waits for its answer. Its schedule is shared under rt_lock.
 * - The main thread: start-up before the threads exist, the signal, and
 *   shutdown after they ended; what it asks of lwIP or postern runs in
 *   tcpip_thread (rt_call()).
 */

/** tcpip_thread's stack is painted this far down from its top (its use is measured up to this). */
#define RT_STACK_PAINT_MAX (1024 * 1024)
#define RT_STACK_PAINT 0xa5 /* the paint's byte */

static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rt_cond; /* CLOCK_MONOTONIC */
static bool rt_kicked;         /* a storage call answered STORAGE_PENDING */
static bool rt_storage_stop;
static bool rt_step_done; /* the step's answer is in rt_step_ms */
static uint32_t rt_step_ms;
static atomic_bool rt_slirp_stop;

/* tcpip_thread's painted stack (rt_stack_paint()): only tcpip_thread reads it. */
static const uint8_t *rt_stack_lo, *rt_stack_hi;
static uintptr_t rt_stack_top;

/* ---- Calls into tcpip_thread -------------------------------------------------------------- */

typedef struct rt_call {
  int (*fn)(void *arg);
  void *arg;
  int rc;
  sys_sem_t done;
} rt_call_t;

static void rt_call_cb(void *arg)
{
  rt_call_t *c = arg;
  c->rc = c->fn(c->arg);
  sys_sem_signal(&c->done);
}

/* Runs fn(arg) in tcpip_thread and returns its answer. */
static int rt_call(int (*fn)(void *arg), void *arg)
{
  rt_call_t c = {fn, arg, -1, NULL};
  if (sys_sem_new(&c.done, 0) != ERR_OK) {
    return -1;
  }
  if (tcpip_callback(rt_call_cb, &c) == ERR_OK) {
    sys_arch_sem_wait(&c.done, 0);
  }
  sys_sem_free(&c.done);
  return c.rc;
}

/* ---- tcpip_thread's stack ------------------------------------------------------------------- */

/* Paints tcpip_thread's stack below the caller (up to RT_STACK_PAINT_MAX from its top), in tcpip_thread. */
static void rt_stack_paint(void)
{
  pthread_attr_t a;
  void *base;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &a) != 0) {
    return;
  }
  int rc = pthread_attr_getstack(&a, &base, &size);
  pthread_attr_destroy(&a);
  if (rc != 0) {
    return;
  }
  uint8_t here;
  uintptr_t top = (uintptr_t)base + size;
  uintptr_t lo = size > RT_STACK_PAINT_MAX ? top - RT_STACK_PAINT_MAX : (uintptr_t)base;
  uintptr_t hi = ((uintptr_t)&here - 1024) & ~(uintptr_t)15; /* this frame, memset's and the red zone stay */
  if (hi <= lo) {
    return;
  }
  memset((void *)lo, RT_STACK_PAINT, hi - lo);
  rt_stack_lo = (const uint8_t *)lo;
  rt_stack_hi = (const uint8_t *)hi;
  rt_stack_top = top;
}

/* The most of tcpip_thread's stack used since the paint, in bytes (0: not painted), in tcpip_thread. */
static size_t rt_stack_used(void)
{
  if (rt_stack_lo == NULL) {
    return 0;
  }
  const uint8_t *p = rt_stack_lo;
  while (p < rt_stack_hi && *p == RT_STACK_PAINT) {
    p++;
  }
  return (size_t)(rt_stack_top - (uintptr_t)p);
}

/* ---- The storage thread --------------------------------------------------------------------- */

/* A storage call answered STORAGE_PENDING (in tcpip_thread): the storage thread polls now. */
static void rt_storage_kick(void)
{
  pthread_mutex_lock(&rt_lock);
  rt_kicked = true;
  pthread_cond_signal(&rt_cond);
  pthread_mutex_unlock(&rt_lock);
}

/* The step, in tcpip_thread: the medium's next bounded step, which may resume connections. */
static void rt_storage_step(void *arg)
{
  (void)arg;
  uint32_t ms = postern_poll();
  pthread_mutex_lock(&rt_lock);
  rt_step_ms = ms;
  rt_step_done = true;
  pthread_cond_signal(&rt_cond);
  pthread_mutex_unlock(&rt_lock);
}

static void rt_deadline(struct timespec *ts, uint32_t ms)
{
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void *rt_storage_main(void *arg)
{
  (void)arg;
  bool idle = false; /* the first step runs at once: the medium may have work from the start */
  struct timespec due;
  rt_deadline(&due, 0);
  pthread_mutex_lock(&rt_lock);
  while (!rt_storage_stop) {
    if (!rt_kicked) {
      int rc = idle ? pthread_cond_wait(&rt_cond, &rt_lock) : pthread_cond_timedwait(&rt_cond, &rt_lock, &due);
      if (rc != ETIMEDOUT) {
        continue; /* a kick, the stop, or nothing: look again */
      }
    }
    rt_kicked = false;
    rt_step_done = false;
    pthread_mutex_unlock(&rt_lock);
    err_t err = tcpip_callback(rt_storage_step, NULL);
    pthread_mutex_lock(&rt_lock);
    while (err == ERR_OK && !rt_step_done) {
      pthread_cond_wait(&rt_cond, &rt_lock);
    }
    uint32_t ms = err == ERR_OK ? rt_step_ms : 1; /* no message free: again in a moment */
    idle = ms == STORAGE_POLL_IDLE;
    if (!idle) {
      rt_deadline(&due, ms);
    }
  }
  pthread_mutex_unlock(&rt_lock);
  return NULL;
}

int __real_storage_open(const char *name, uint64_t length, storage_upload_t **out);
int __real_storage_write(storage_upload_t *u, const void *data, size_t len);
int __real_storage_commit(storage_upload_t *u, bool *replaced);
int __real_storage_remove(const char *name);
long __real_storage_read(storage_reader_t *r, void *buf, size_t len);

static long rt_pended(long rc)
{
  if (rc == STORAGE_PENDING) {
    rt_storage_kick();
  }
  return rc;
}

int __wrap_storage_open(const char *name, uint64_t length, storage_upload_t **out)
{
  return (int)rt_pended(__real_storage_open(name, length, out));
}

int __wrap_storage_write(storage_upload_t *u, const void *data, size_t len)
{
  return (int)rt_pended(__real_storage_write(u, data, len));
}

int __wrap_storage_commit(storage_upload_t *u, bool *replaced)
{
  return (int)rt_pended(__real_storage_commit(u, replaced));
}

int __wrap_storage_remove(const char *name)
{
  return (int)rt_pended(__real_storage_remove(name));
}

long __wrap_storage_read(storage_reader_t *r, void *buf, size_t len)
{
  return rt_pended(__real_storage_read(r, buf, len));
}

/* ---- The slirp thread ------------------------------------------------------------------------ */

static void *rt_slirp_main(void *arg)
{
  (void)arg;
  while (!atomic_load(&rt_slirp_stop)) {
    slirp_netif_poll(1000);
  }
  return NULL;
}

/* ---- Start and stop --------------------------------------------------------------------------- */

typedef struct rt_app {
  int (*start)(void *arg);
  void (*tick)(void *arg);
  void (*stop)(void *arg);
  void *arg;
  int sig;
} rt_app_t;

/* The board's tick, an lwIP timer in tcpip_thread, again and again. */
static void rt_tick_cb(void *arg)
{
  rt_app_t *app = arg;
  app->tick(app->arg);
  sys_timeout(RTOS_HOST_TICK_MS, rt_tick_cb, app);
}

static int rt_start_cb(void *arg)
{
  rt_app_t *app = arg;
  rt_stack_paint();
  int rc = app->start(app->arg);
  size_t used = rt_stack_used();
  if (used > 0) {
    log_line("rtos: tcpip_thread used %u bytes of stack to start", (unsigned)used);
  }
  rt_stack_paint(); /* again: what serving takes is reported at stop */
  if (rc == 0 && app->tick != NULL) {
    sys_timeout(RTOS_HOST_TICK_MS, rt_tick_cb, app);
  }
  return rc;
}

static int rt_stop_cb(void *arg)
{
  rt_app_t *app = arg;
  if (app->tick != NULL) {
    sys_untimeout(rt_tick_cb, app);
  }
  log_line("postern: stopping on signal %d", app->sig);
  size_t used = rt_stack_used();
  if (used > 0) {
    log_line("rtos: tcpip_thread used %u bytes of stack at most serving (TCPIP_THREAD_STACKSIZE %u)", (unsigned)used,
             (unsigned)TCPIP_THREAD_STACKSIZE);
  }
  app->stop(app->arg);
  return 0;
}

static int rt_thread(pthread_t *t, void *(*fn)(void *), const char *name)
{
  int rc = pthread_create(t, NULL, fn, NULL);
  if (rc != 0) {
    log_line("rtos: cannot start the %s thread: %s", name, strerror(rc));
    return -1;
  }
  pthread_setname_np(*t, name);
  return 0;
}

/** Runs the simulator on tcpip_thread and its two threads until a signal; see rtos_host.h. */
int rtos_host_run(int (*start)(void *arg), void (*tick)(void *arg), void (*stop)(void *arg), void *arg)
{
  /* Every thread inherits the mask: the signals come to sigwait() below. */
  sigset_t stop_sigs;
  sigemptyset(&stop_sigs);
  sigaddset(&stop_sigs, SIGINT);
  sigaddset(&stop_sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&rt_cond, &ca);
  pthread_condattr_destroy(&ca);

  rt_app_t app = {start, tick, stop, arg, 0};
  tcpip_init(NULL, NULL);
  if (rt_call(rt_start_cb, &app) != 0) {
    return -1;
  }
  pthread_t slirp_thread, storage_thread;
  if (rt_thread(&slirp_thread, rt_slirp_main, "slirp") != 0) {
    return -1;
  }
  if (rt_thread(&storage_thread, rt_storage_main, "storage") != 0) {
    return -1;
  }

  int sig = 0;
  while (sigwait(&stop_sigs, &sig) != 0) {
  }
  app.sig = sig;

  pthread_mutex_lock(&rt_lock);
  rt_storage_stop = true;
  pthread_cond_signal(&rt_cond);
  pthread_mutex_unlock(&rt_lock);
  pthread_join(storage_thread, NULL);
  atomic_store(&rt_slirp_stop, true);
  slirp_netif_wake();
  pthread_join(slirp_thread, NULL);
  rt_call(rt_stop_cb, &app); /* tcpip_thread goes on with lwIP's timers until the process ends */
  return sig;
}
#endif /* !NO_SYS */
