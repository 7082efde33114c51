// udpperf: a UDP echo server and a windowed echo client in C, so that measuring a UDP
// forwarder is not limited by the peers' own CPU. Loopback only.
//   udpperf echo PORT
//   udpperf client PORT SECONDS WINDOW SIZE   -> prints "<echoed> <seconds> <rate>"
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int port = atoi(argv[2]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  char data[65536];
  if (strcmp(argv[1], "echo") == 0) {
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    for (;;) {
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(fd, data, sizeof data, 0, (struct sockaddr *)&from, &fl);
      if (n < 0) continue;
      sendto(fd, data, n, 0, (struct sockaddr *)&from, fl);
    }
  }
  double secs = atof(argv[3]);
  int window = atoi(argv[4]), size = atoi(argv[5]);
  memset(data, 'x', size);
  connect(fd, (struct sockaddr *)&a, sizeof a);
  long sent = 0, got = 0;
  double start = now(), end = start + secs;
  for (int i = 0; i < window; i++) if (send(fd, data, size, 0) > 0) sent++;
  struct pollfd p = {fd, POLLIN, 0};
  while (now() < end) {
    if (poll(&p, 1, 200) <= 0) {  // a lost datagram: refill the window
      for (long i = sent - got; i < window; i++) if (send(fd, data, size, 0) > 0) sent++;
      continue;
    }
    while (recv(fd, data, sizeof data, MSG_DONTWAIT) > 0) {
      got++;
      if (send(fd, data, size, 0) > 0) sent++;
    }
  }
  double el = now() - start;
  printf("%ld %.3f %.0f\n", got, el, got / el);
  return 0;
}
