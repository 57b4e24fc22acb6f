// floor: what any static server pays on this machine, for comparison, not for use.
//
// One thread, epoll, keep-alive; no parsing beyond the request line's path, no headers read,
// no checks, no logging, a fixed response head of tinyserve's size. Whatever CPU it spends
// per response is the kernel's (the system calls, TCP, loopback) plus almost nothing: a
// server with a real HTTP layer, a cache and a runtime cannot go below it, so a target
// under it cannot be met on the machine. bench/ab.py --floor builds and runs it.
//
//   floor --root DIR --listen 127.0.0.1:PORT --mode sendfile|memory [--open-files N]
//   (other flags ignored)
//
// --mode sendfile: the head by sendmsg(MSG_MORE), the body by sendfile from a descriptor
//   kept open in a least-recently-used list of --open-files (16000, nginx's
//   open_file_cache max in bench/): a file evicted is opened again at its next request.
// --mode memory: head and body in one writev; each body read into memory once and kept
//   for good (RSS grows to the site's requested bytes).
//
// Assumes well-formed requests of at most 8 KiB, and a socket buffer that takes a whole
// response at once (pages of tens of KB over loopback): it is a measuring instrument.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUCKETS (1 << 20)

struct entry {
  char *path;
  size_t path_len;
  int fd;      // sendfile mode: the kept descriptor, or -1 once evicted
  char *body;  // memory mode: the bytes
  off_t len;
  struct entry *next;              // in its hash bucket
  struct entry *newer, *older;     // sendfile mode: in the LRU list while fd >= 0
};

static struct entry *table[BUCKETS];
static const char *root = ".";
static int memory_mode;
static long open_budget = 16000, open_count;
static struct entry *newest, *oldest;

static void lru_unlink(struct entry *e) {
  if (e->newer) e->newer->older = e->older; else newest = e->older;
  if (e->older) e->older->newer = e->newer; else oldest = e->newer;
  e->newer = e->older = NULL;
}

static void lru_push(struct entry *e) {
  e->older = newest;
  e->newer = NULL;
  if (newest) newest->newer = e; else oldest = e;
  newest = e;
}

// Counts `e`'s new descriptor in, as the newest; closes the oldest when over budget.
static void lru_admit(struct entry *e) {
  lru_push(e);
  if (++open_count > open_budget) {
    struct entry *victim = oldest;
    lru_unlink(victim);
    close(victim->fd);
    victim->fd = -1;
    open_count--;
  }
}

static unsigned hash(const char *s, size_t n) {
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

// The entry for `path`, opened (and in memory mode read) on first use; in sendfile mode
// with its descriptor open.
static struct entry *lookup(const char *path, size_t n) {
  unsigned h = hash(path, n) & (BUCKETS - 1);
  char full[4096];
  for (struct entry *e = table[h]; e; e = e->next) {
    if (e->path_len != n || memcmp(e->path, path, n)) continue;
    if (memory_mode) return e;
    if (e->fd >= 0) {  // a hit: it becomes the newest
      lru_unlink(e);
      lru_push(e);
      return e;
    }
    snprintf(full, sizeof full, "%s%.*s", root, (int)n, path);  // evicted: open it again
    if ((e->fd = open(full, O_RDONLY | O_CLOEXEC)) < 0) return NULL;
    lru_admit(e);
    return e;
  }
  snprintf(full, sizeof full, "%s%.*s", root, (int)n, path);
  int fd = open(full, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    return NULL;
  }
  struct entry *e = calloc(1, sizeof *e);
  e->path = strndup(path, n);
  e->path_len = n;
  e->len = st.st_size;
  e->fd = fd;
  if (memory_mode) {
    e->body = malloc(st.st_size + 1);
    if (pread(fd, e->body, st.st_size, 0) != st.st_size) e->len = 0;
    close(fd);
    e->fd = -1;
  } else {
    lru_admit(e);
  }
  e->next = table[h];
  table[h] = e;
  return e;
}

struct conn {
  int fd;
  size_t have;
  char buf[8192];
};

static void respond(int sock, struct entry *e) {
  char head[512];
  int n;
  if (!e) {
    n = snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    send(sock, head, n, MSG_NOSIGNAL);
    return;
  }
  // The size of tinyserve's head for a page, so that both put the same bytes on the wire.
  n = snprintf(head, sizeof head,
               "HTTP/1.1 200 OK\r\nx-content-type-options: nosniff\r\n"
               "etag: \"3c0b4890e222e49fecdeb47082d474ea\"\r\ncache-control: no-cache\r\n"
               "last-modified: Thu, 26 Nov 2026 17:34:19 GMT\r\n"
               "content-type: text/html; charset=utf-8\r\naccept-ranges: bytes\r\n"
               "content-length: %lld\r\ndate: Thu, 26 Nov 2026 17:36:54 GMT\r\n\r\n",
               (long long)e->len);
  if (memory_mode) {
    struct iovec iov[2] = {{head, n}, {e->body, e->len}};
    writev(sock, iov, 2);
    return;
  }
  send(sock, head, n, MSG_MORE | MSG_NOSIGNAL);
  off_t off = 0;
  while (off < e->len && sendfile(sock, e->fd, &off, e->len - off) > 0) {
  }
}

int main(int argc, char **argv) {
  const char *listen_at = "127.0.0.1:8080";
  for (int i = 1; i + 1 < argc; i++) {
    if (!strcmp(argv[i], "--root")) root = argv[++i];
    else if (!strcmp(argv[i], "--listen")) listen_at = argv[++i];
    else if (!strcmp(argv[i], "--mode")) memory_mode = !strcmp(argv[++i], "memory");
    else if (!strcmp(argv[i], "--open-files")) open_budget = atol(argv[++i]);
  }
  struct rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  if (open_budget < 1 || (rlim_t)open_budget + 1100 > lim.rlim_cur) {  // room for connections
    fprintf(stderr, "floor: --open-files %ld does not fit the descriptor limit %llu\n", open_budget,
            (unsigned long long)lim.rlim_cur);
    return 2;
  }

  char host[64];
  int port, one = 1;
  if (sscanf(listen_at, "%63[^:]:%d", host, &port) != 2) return 2;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1024)) {
    perror("floor: listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  printf("floor listening on %s (%s)\n", listen_at, memory_mode ? "memory" : "sendfile");
  fflush(stdout);

  struct epoll_event events[256];
  for (;;) {
    int ready = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < ready; i++) {
      struct conn *c = events[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      ssize_t got = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have - 1, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0 || c->have + got >= sizeof c->buf - 1) {
        close(c->fd);
        free(c);
        continue;
      }
      c->have += got;
      c->buf[c->have] = 0;
      char *end;
      while ((end = strstr(c->buf, "\r\n\r\n"))) {
        char *path = strchr(c->buf, ' ');
        char *stop = path ? strchr(path + 1, ' ') : NULL;
        struct entry *e = NULL;
        if (stop && stop > path + 1) {
          path++;
          size_t n = stop - path;
          if (n == 1) path = "/index.html", n = 11;
          e = lookup(path, n);
        }
        respond(c->fd, e);
        size_t used = end + 4 - c->buf;
        memmove(c->buf, end + 4, c->have - used + 1);
        c->have -= used;
      }
    }
  }
}
