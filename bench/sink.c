// SPDX-License-Identifier: Apache-2.0
/*
 * sink: the benchmark's backend server (docs/benchmarks.md), run in a backend pod's namespace.
 * One thread, one epoll loop, on TCP and UDP port PORT:
 *   - TCP: accepts, writes one byte (the answer `loadgen crr` waits for), then reads and discards
 *     until the peer closes or resets (`loadgen stream` bytes are counted here);
 *   - UDP: receives with recvmmsg and counts datagrams and bytes.
 * Prints `ready` once listening. On SIGUSR1 it prints its counters as one JSON line (the harness
 * reads them before and after a point); SIGTERM/SIGINT end it. It exits by itself after
 * MAX_SECONDS so that a forgotten sink never outlives a run for long.
 *
 *   sink PORT [MAX_SECONDS=3600]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDP_BATCH 64
/* listen()'s backlog is capped at net.core.somaxconn: ask for the most, the namespace decides
 * (the harness raises it in the backend pods). */
#define SOMAXCONN_MAX 65535
#define LISTEN_TAG 0xffffffffu
#define UDP_TAG 0xfffffffeu

static volatile sig_atomic_t report_wanted, stop_wanted;

static void on_usr1(int sig)
{
	(void)sig;
	report_wanted = 1;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_wanted = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "sink: %s: %s\n", what, strerror(errno));
	exit(2);
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	uint64_t accepted = 0, tcp_bytes = 0, udp_packets = 0, udp_bytes = 0;
	int one = 1, ep, lfd, ufd;
	struct sigaction sa = { 0 };
	time_t started = time(NULL);
	long max_seconds;

	if (argc < 2) {
		fprintf(stderr, "usage: sink PORT [MAX_SECONDS]\n");
		return 2;
	}
	addr.sin_port = htons((uint16_t)atoi(argv[1]));
	max_seconds = argc > 2 ? atol(argv[2]) : 3600;
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || ufd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, SOMAXCONN_MAX) < 0)
		die("tcp bind/listen");
	if (bind(ufd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("udp bind");
	int rcvbuf = 4 << 20;

	setsockopt(ufd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTEN_TAG };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	ev.data.u32 = UDP_TAG;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev) < 0)
		die("epoll_ctl");
	printf("ready\n");

	static char buf[65536];
	static char ubufs[UDP_BATCH][2048];
	struct iovec iovs[UDP_BATCH];
	struct mmsghdr msgs[UDP_BATCH];

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < UDP_BATCH; i++) {
		iovs[i].iov_base = ubufs[i];
		iovs[i].iov_len = sizeof(ubufs[i]);
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	while (!stop_wanted) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 100);

		if (report_wanted) {
			report_wanted = 0;
			printf("{\"accepted\":%llu,\"tcpBytes\":%llu,\"udpPackets\":%llu,\"udpBytes\":%llu}\n",
			       (unsigned long long)accepted, (unsigned long long)tcp_bytes,
			       (unsigned long long)udp_packets, (unsigned long long)udp_bytes);
		}
		if (time(NULL) - started > max_seconds)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int k = 0; k < n; k++) {
			uint32_t tag = evs[k].data.u32;

			if (tag == LISTEN_TAG) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

					if (fd < 0)
						break;
					accepted++;
					/* `loadgen connect` resets at once: such a connection is over before it is
					 * accepted, and needs no epoll round. */
					if (send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
						close(fd);
						continue;
					}
					struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)fd };

					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0)
						close(fd);
				}
			} else if (tag == UDP_TAG) {
				for (;;) {
					int got = recvmmsg(ufd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);

					if (got <= 0)
						break;
					udp_packets += (uint64_t)got;
					for (int i = 0; i < got; i++)
						udp_bytes += msgs[i].msg_len;
				}
			} else {
				int fd = (int)tag;

				for (;;) {
					ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

					if (r > 0) {
						tcp_bytes += (uint64_t)r;
						continue;
					}
					if (r < 0 && (errno == EAGAIN || errno == EINTR))
						break;
					close(fd); /* EOF or reset */
					break;
				}
			}
		}
	}
	return 0;
}
