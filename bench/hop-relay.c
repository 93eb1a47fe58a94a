/*
 * hop-ceiling.ts's relay in C: what one more hop costs with no runtime at all. It listens on a loopback
 * port (printed on the first line), makes N connections to each PORT, and passes on every byte as it
 * comes to all of them (blocking writes, one connection after the other), after feeding it to an
 * HMAC-SHA256 of its message (every SIZE bytes), as hop-process.ts's relay does. At the end it prints the
 * CPU time it spent from the incoming connection on, in microseconds.
 *
 *   cc -O2 -o hop-relay hop-relay.c -lcrypto && ./hop-relay SIZE PORT:N [PORT:N ...]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char KEY[] = "hop-ceiling-key-0123456789abcdef"; /* hop-process.ts's HOP_KEY */

static int fail(const char *what) {
  perror(what);
  return 1;
}

static long cpuMicroseconds(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (long)((usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: hop-relay SIZE PORT:N [PORT:N ...]\n"), 2;
  const size_t size = strtoul(argv[1], NULL, 10);
  if (size == 0) return fprintf(stderr, "hop-relay: SIZE must be a positive number of bytes\n"), 2;
  /* A reader that goes away must end the run with a message, not a silent SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof address;
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) return fail("socket");
  if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1)) return fail("listen");
  if (getsockname(listener, (struct sockaddr *)&address, &length)) return fail("getsockname");

  static int outs[1024];
  int count = 0;
  for (int i = 2; i < argc; i++) {
    const char *colon = strchr(argv[i], ':');
    struct sockaddr_in target = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[i])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int n = colon ? atoi(colon + 1) : 1; n > 0; n--) {
      if (count == (int)(sizeof outs / sizeof outs[0])) return fprintf(stderr, "hop-relay: at most %d connections\n", count), 2;
      const int out = socket(AF_INET, SOCK_STREAM, 0);
      if (out < 0) return fail("socket");
      if (connect(out, (struct sockaddr *)&target, sizeof target)) return fail("connect");
      const int one = 1;
      setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      outs[count++] = out;
    }
  }
  printf("%d\n", ntohs(address.sin_port));
  fflush(stdout);
  const int in = accept(listener, NULL, NULL);
  if (in < 0) return fail("accept");
  /* From the incoming connection on, as the Node relay counts. */
  const long cpuAtStart = cpuMicroseconds();

  static unsigned char buffer[64 * 1024];
  HMAC_CTX *hmac = HMAC_CTX_new();
  if (!hmac) return fprintf(stderr, "hop-relay: HMAC_CTX_new failed\n"), 1;
  HMAC_Init_ex(hmac, KEY, (int)strlen(KEY), EVP_sha256(), NULL);
  size_t left = size;
  for (;;) {
    const ssize_t n = read(in, buffer, sizeof buffer);
    if (n < 0) return fail("read");
    if (n == 0) break;
    for (ssize_t at = 0; at < n;) {
      const size_t take = (size_t)(n - at) < left ? (size_t)(n - at) : left;
      HMAC_Update(hmac, buffer + at, take);
      at += (ssize_t)take;
      left -= take;
      if (left == 0) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int digestLength;
        HMAC_Final(hmac, digest, &digestLength);
        HMAC_Init_ex(hmac, NULL, 0, NULL, NULL);
        left = size;
      }
    }
    for (int i = 0; i < count; i++) {
      for (ssize_t at = 0; at < n;) {
        const ssize_t written = write(outs[i], buffer + at, (size_t)(n - at));
        if (written <= 0) return fail("write");
        at += written;
      }
    }
  }
  for (int i = 0; i < count; i++) close(outs[i]);
  printf("%ld\n", cpuMicroseconds() - cpuAtStart);
  return 0;
}
