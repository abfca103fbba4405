// SPDX-License-Identifier: Apache-2.0
/*
 * loadgen: the benchmark's load generator (docs/benchmarks.md). Native on purpose: the figures
 * must measure the kernel's path, not a JavaScript event loop. Runs for a bounded time and prints
 * one JSON object on stdout.
 *
 *   loadgen connect ADDR PORT [-c PARALLEL] [-d SECONDS]
 *       PARALLEL non-blocking connect/close loops: each opens a TCP connection, waits for the
 *       handshake, and closes it with a RST (SO_LINGER 0, so no TIME_WAIT on either side). Reports
 *       connections/s and connect latency percentiles (SYN sent -> handshake done).
 *   loadgen crr ADDR PORT [-c PARALLEL] [-d SECONDS] [-n COUNT]
 *       connect, read the server's one-byte answer, close with a RST: request rate of a
 *       connection-per-request client. -n stops after COUNT completed requests (connect too):
 *       a quick "does this path answer" probe that still waits out a SYN retransmission.
 *   loadgen udp ADDR PORT [-c FLOWS] [-d SECONDS] [-s PAYLOAD]
 *       sends PAYLOAD-byte datagrams (default 18: 64-byte frames) as fast as sendmmsg allows,
 *       round-robin over FLOWS sockets (distinct source ports). Reports packets sent; the sink
 *       counts what arrived.
 *   loadgen stream ADDR PORT [-c CONNS] [-d SECONDS]
 *       CONNS TCP connections writing 64 KiB buffers; reports bytes written per second.
 *
 * Errors in connect/crr are counted by kind (refused, timeout = no answer within 1 s,
 * unreachable, other) rather than fatal: a proxy that drops or refuses shows up in the figures.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARALLEL 1024
#define HIST_US 1000000 /* 1 µs buckets up to 1 s */
#define CONNECT_TIMEOUT_NS 1000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen connect|crr|udp|stream ADDR PORT [-c N] [-d SECONDS] [-s PAYLOAD] [-n COUNT]\n");
	exit(2);
}

struct errors {
	uint64_t refused, timeout, unreachable, other;
};

static void count_error(struct errors *e, int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
		e->refused++;
		break;
	case ETIMEDOUT:
		e->timeout++;
		break;
	case ENETUNREACH:
	case EHOSTUNREACH:
		e->unreachable++;
		break;
	default:
		e->other++;
	}
}

static uint64_t percentile(const uint32_t *hist, uint64_t overflow, uint64_t total, double p)
{
	uint64_t want = (uint64_t)(p * (double)total), seen = 0;

	if (total == 0)
		return 0;
	if (want >= total)
		want = total - 1;
	for (uint64_t i = 0; i < HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i;
	}
	(void)overflow;
	return HIST_US;
}

struct conn {
	int fd;
	int state; /* 0 idle, 1 connecting, 2 waiting for the answer */
	uint64_t started;
};

static int open_connecting(const struct sockaddr_in *dst, struct errors *errs)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		die("SO_LINGER");
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == 0 || errno == EINPROGRESS)
		return fd;
	count_error(errs, errno);
	close(fd);
	return -1;
}

/* connect and crr. */
static int run_connect(const struct sockaddr_in *dst, int parallel, double seconds, int crr, uint64_t max_done)
{
	static uint32_t hist[HIST_US];
	struct conn conns[MAX_PARALLEL];
	struct epoll_event evs[MAX_PARALLEL];
	struct errors errs = { 0 };
	uint64_t done = 0, overflow = 0, max_ns = 0, sum_ns = 0;
	uint64_t start, deadline, t;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		die("epoll_create1");
	memset(conns, 0, sizeof(conns));
	start = now_ns();
	deadline = start + (uint64_t)(seconds * 1e9);

	for (int i = 0; i < parallel; i++)
		conns[i].fd = -1;
	for (;;) {
		t = now_ns();
		if (t >= deadline || (max_done && done >= max_done))
			break;
		/* (Re)open idle slots and time out stuck ones. */
		for (int i = 0; i < parallel; i++) {
			struct conn *c = &conns[i];

			if (c->fd >= 0 && t - c->started > CONNECT_TIMEOUT_NS) {
				errs.timeout++;
				close(c->fd);
				c->fd = -1;
			}
			if (c->fd < 0) {
				struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)i };

				c->started = now_ns();
				c->fd = open_connecting(dst, &errs);
				if (c->fd < 0)
					continue;
				c->state = 1;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
					die("epoll_ctl");
			}
		}
		int n = epoll_wait(ep, evs, parallel, 10);

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int k = 0; k < n; k++) {
			struct conn *c = &conns[evs[k].data.u32];
			int err = 0;
			socklen_t len = sizeof(err);
			int finished = 0;

			if (c->fd < 0)
				continue;
			if (c->state == 1) {
				if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
					err = errno;
				if (err) {
					count_error(&errs, err);
					close(c->fd);
					c->fd = -1;
					continue;
				}
				if (!crr) {
					finished = 1;
				} else {
					struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[k].data.u32 };

					c->state = 2;
					if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
						die("epoll_ctl");
				}
			} else {
				char b;
				ssize_t r = recv(c->fd, &b, 1, 0);

				if (r == 1) {
					finished = 1;
				} else if (r < 0 && errno == EAGAIN) {
					continue;
				} else {
					count_error(&errs, r == 0 ? ECONNRESET : errno);
					close(c->fd);
					c->fd = -1;
					continue;
				}
			}
			if (finished) {
				uint64_t ns = now_ns() - c->started, us = ns / 1000;

				done++;
				sum_ns += ns;
				if (ns > max_ns)
					max_ns = ns;
				if (us < HIST_US)
					hist[us]++;
				else
					overflow++;
				close(c->fd); /* RST: SO_LINGER 0 */
				c->fd = -1;
			}
		}
	}
	double elapsed = (double)(now_ns() - start) / 1e9;

	for (int i = 0; i < parallel; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	printf("{\"mode\":\"%s\",\"parallel\":%d,\"seconds\":%.3f,\"completed\":%llu,\"rate\":%.1f,"
	       "\"latencyUs\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"mean\":%.1f,\"max\":%.1f},"
	       "\"errors\":{\"refused\":%llu,\"timeout\":%llu,\"unreachable\":%llu,\"other\":%llu}}\n",
	       crr ? "crr" : "connect", parallel, elapsed, (unsigned long long)done, (double)done / elapsed,
	       (unsigned long long)percentile(hist, overflow, done, 0.50),
	       (unsigned long long)percentile(hist, overflow, done, 0.90),
	       (unsigned long long)percentile(hist, overflow, done, 0.99),
	       done ? (double)sum_ns / (double)done / 1000.0 : 0.0, (double)max_ns / 1000.0,
	       (unsigned long long)errs.refused, (unsigned long long)errs.timeout,
	       (unsigned long long)errs.unreachable, (unsigned long long)errs.other);
	return 0;
}

#define UDP_BATCH 64

static int run_udp(const struct sockaddr_in *dst, int flows, double seconds, int payload)
{
	int fds[MAX_PARALLEL];
	char buf[2048];
	struct iovec iov = { .iov_base = buf, .iov_len = (size_t)payload };
	struct mmsghdr msgs[UDP_BATCH];
	uint64_t sent = 0, failed = 0, start, deadline;

	memset(buf, 'x', sizeof(buf));
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < UDP_BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	for (int i = 0; i < flows; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0)
			die("socket");
		if (connect(fds[i], (const struct sockaddr *)dst, sizeof(*dst)) < 0)
			die("connect");
	}
	start = now_ns();
	deadline = start + (uint64_t)(seconds * 1e9);
	for (int i = 0; now_ns() < deadline; i = (i + 1) % flows) {
		int n = sendmmsg(fds[i], msgs, UDP_BATCH, 0);

		if (n > 0)
			sent += (uint64_t)n;
		else
			failed++; /* ECONNREFUSED from an earlier ICMP, ENOBUFS: keep going */
	}
	double elapsed = (double)(now_ns() - start) / 1e9;

	printf("{\"mode\":\"udp\",\"flows\":%d,\"payload\":%d,\"seconds\":%.3f,\"sent\":%llu,\"rate\":%.1f,\"sendErrors\":%llu}\n",
	       flows, payload, elapsed, (unsigned long long)sent, (double)sent / elapsed, (unsigned long long)failed);
	return 0;
}

static int run_stream(const struct sockaddr_in *dst, int conns, double seconds)
{
	static char buf[65536];
	int fds[MAX_PARALLEL];
	uint64_t bytes = 0, start, deadline;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };

	for (int i = 0; i < conns; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0)
			die("socket");
		setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fds[i], (const struct sockaddr *)dst, sizeof(*dst)) < 0) {
			int err = errno;

			printf("{\"mode\":\"stream\",\"connections\":%d,\"seconds\":0,\"bytes\":0,\"rate\":0,\"error\":\"%s\"}\n",
			       conns, strerror(err));
			return 0;
		}
	}
	start = now_ns();
	deadline = start + (uint64_t)(seconds * 1e9);
	for (int i = 0; now_ns() < deadline; i = (i + 1) % conns) {
		ssize_t w = send(fds[i], buf, sizeof(buf), MSG_NOSIGNAL);

		if (w > 0)
			bytes += (uint64_t)w;
		else if (errno != EAGAIN && errno != EINTR)
			break;
	}
	double elapsed = (double)(now_ns() - start) / 1e9;

	for (int i = 0; i < conns; i++)
		close(fds[i]);
	printf("{\"mode\":\"stream\",\"connections\":%d,\"seconds\":%.3f,\"bytes\":%llu,\"rate\":%.1f}\n", conns, elapsed,
	       (unsigned long long)bytes, (double)bytes / elapsed);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	int parallel = 8, payload = 18, opt;
	long count = 0;
	double seconds = 2;

	if (argc < 4)
		usage();
	const char *mode = argv[1];

	if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1)
		usage();
	dst.sin_port = htons((uint16_t)atoi(argv[3]));
	optind = 4;
	while ((opt = getopt(argc, argv, "c:d:s:n:")) != -1) {
		switch (opt) {
		case 'c':
			parallel = atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 's':
			payload = atoi(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (parallel < 1 || parallel > MAX_PARALLEL || seconds <= 0 || seconds > 600 || payload < 0 || payload > 1472 || count < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "connect"))
		return run_connect(&dst, parallel, seconds, 0, (uint64_t)count);
	if (!strcmp(mode, "crr"))
		return run_connect(&dst, parallel, seconds, 1, (uint64_t)count);
	if (!strcmp(mode, "udp"))
		return run_udp(&dst, parallel, seconds, payload);
	if (!strcmp(mode, "stream"))
		return run_stream(&dst, parallel, seconds);
	usage();
	return 2;
}
