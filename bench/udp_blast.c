/* Paced UDP sender for bench/capture.py: sendmmsg in batches, a bounded count, loopback only by its caller.
   A Python sendto loop tops out near 130k packets/s here once captures tap lo; this reaches the rates under test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: blast RATE SECONDS ADDR PORT\n"); return 2; }
    long rate = atol(argv[1]); double seconds = atof(argv[2]);
    long count = (long)(rate * seconds);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {0}; to.sin_family = AF_INET; to.sin_port = htons(atoi(argv[4]));
    inet_pton(AF_INET, argv[3], &to.sin_addr);
    char payload[16]; memset(payload, 'w', sizeof payload);
    enum { B = 64 };
    struct mmsghdr msgs[B]; struct iovec iov[B];
    for (int i = 0; i < B; i++) {
        iov[i].iov_base = payload; iov[i].iov_len = sizeof payload;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &to; msgs[i].msg_hdr.msg_namelen = sizeof to;
    }
    long batch = rate / 2000; if (batch < 1) batch = 1; if (batch > B) batch = B;
    double step = (double)batch / rate, start = now(), next = start;
    long sent = 0;
    while (sent < count) {
        int n = (int)((count - sent) < batch ? (count - sent) : batch);
        int k = sendmmsg(fd, msgs, n, 0);
        if (k > 0) sent += k;
        next += step * ((double)(k > 0 ? k : 0) / batch);
        double d = next - now();
        if (d > 0) { struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) }; nanosleep(&ts, NULL); }
    }
    printf("%ld %f\n", sent, now() - start);
    return 0;
}
