/* The floor for sysfs mode (make bench-cadence): opens every file the agent
 * reads in a steady cycle under ROOT/class/infiniband (each port's state,
 * phys_state, rate, counters/ and hw_counters/, each device's hw_counters/,
 * less hw_counters/lifespan, a setting), holds them open, and preads each
 * once per interval into one buffer. No parsing, no output: what any
 * program reading these files at that cadence must pay at least.
 *
 * Given PORT and BODY it is also an exporter of these files reduced to its
 * reads and its answers ("floor + serve"): the same reads, and every HTTP
 * request on 127.0.0.1:PORT answered with the bytes of the file BODY (the
 * agent's own scrape text), gzip-compressed when the request names gzip
 * (the bench asks for gzip or identity; q-values are not parsed), at most
 * once per interval (a set changes each cycle), with the fastest deflate
 * measured (ISA-L's igzip, level 1). No parsing, no rendering, one thread.
 * Usage: floor ROOT [INTERVAL_S [PORT BODY]]   (runs until killed; prints the
 * file count) */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int *fds;
static size_t n, cap;

static void add(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (n == cap) {
		cap = cap ? 2 * cap : 1024;
		fds = realloc(fds, cap * sizeof *fds);
		if (!fds)
			exit(1);
	}
	fds[n++] = fd;
}

/* Every file in DIR (not recursing), less "lifespan". */
static void add_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "lifespan"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		add(path);
	}
	closedir(d);
}

/* What the serve mode answers with: the body, and its gzip form made at most
 * once per interval. */
static char *body, *gz;
static size_t body_len, gz_cap, gz_len;
static int gz_stale = 1;
static struct isal_zstream zs;
static unsigned char level_buf[ISAL_DEF_LVL1_DEFAULT];

/* BODY as one gzip member into gz. */
static void compress_body(void)
{
	isal_deflate_init(&zs);
	zs.gzip_flag = IGZIP_GZIP;
	zs.level = 1;
	zs.level_buf = level_buf;
	zs.level_buf_size = sizeof level_buf;
	zs.end_of_stream = 1;
	zs.flush = NO_FLUSH;
	zs.next_in = (unsigned char *)body;
	zs.avail_in = body_len;
	zs.next_out = (unsigned char *)gz;
	zs.avail_out = gz_cap;
	if (isal_deflate(&zs) != COMP_OK || zs.avail_in)
		fprintf(stderr, "igzip failed\n"), exit(1);
	gz_len = zs.total_out;
}

static void load_body(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		perror(path), exit(1);
	body_len = st.st_size;
	body = malloc(body_len + 1);
	if (!body || read(fd, body, body_len) != (ssize_t)body_len)
		perror(path), exit(1);
	close(fd);
	/* Stored blocks at worst, with room for the gzip header and trailer. */
	gz_cap = body_len + body_len / 8 + 1024;
	if (!(gz = malloc(gz_cap)))
		exit(1);
}

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0)
		perror("listen"), exit(1);
	return fd;
}

/* One request on a new connection: its head read, the answer written, the
 * connection closed. */
static void answer(int lfd)
{
	char req[4096], head[256];
	size_t got = 0;
	/* A client that sends nothing costs at most this, not the interval. */
	struct timeval wait = { 0, 200000 };
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
	while (got < sizeof req - 1) {
		ssize_t r = read(fd, req + got, sizeof req - 1 - got);
		if (r <= 0)
			break;
		got += r;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[got] = 0;
	int gzip = strstr(req, "gzip") != NULL;
	if (gzip && gz_stale) {
		compress_body();
		gz_stale = 0;
	}
	struct iovec v[2] = { { head, 0 }, { gzip ? gz : body, gzip ? gz_len : body_len } };
	v[0].iov_len = snprintf(head, sizeof head,
				"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
				"%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
				gzip ? "Content-Encoding: gzip\r\n" : "", v[1].iov_len);
	for (size_t off = 0; off < v[0].iov_len + v[1].iov_len;) {
		struct msghdr m = { .msg_iov = v, .msg_iovlen = 2 };
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += w;
		for (int i = 0; i < 2; i++) {
			size_t k = (size_t)w < v[i].iov_len ? (size_t)w : v[i].iov_len;
			v[i].iov_base = (char *)v[i].iov_base + k;
			v[i].iov_len -= k;
			w -= k;
		}
	}
	close(fd);
}

int main(int argc, char **argv)
{
	char class[4096], path[4096];
	DIR *devs, *ports;
	struct dirent *d, *p;
	double interval = argc > 2 ? atof(argv[2]) : 1.0;
	static char buf[4096];
	struct timespec next;

	int lfd = -1;

	if (argc < 2 || argc == 4) {
		fprintf(stderr, "usage: floor ROOT [INTERVAL_S [PORT BODY]]\n");
		return 2;
	}
	if (argc > 4) {
		load_body(argv[4]);
		lfd = listen_on(atoi(argv[3]));
	}
	snprintf(class, sizeof class, "%s/class/infiniband", argv[1]);
	if (!(devs = opendir(class)))
		return perror(class), 1;
	while ((d = readdir(devs))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/hw_counters", class, d->d_name);
		add_dir(path);
		snprintf(path, sizeof path, "%s/%s/ports", class, d->d_name);
		if (!(ports = opendir(path)))
			continue;
		while ((p = readdir(ports))) {
			static const char *const each[] = { "state", "phys_state", "rate" };
			if (p->d_name[0] == '.')
				continue;
			for (size_t i = 0; i < 3; i++) {
				snprintf(path, sizeof path, "%s/%s/ports/%s/%s", class, d->d_name, p->d_name, each[i]);
				add(path);
			}
			snprintf(path, sizeof path, "%s/%s/ports/%s/counters", class, d->d_name, p->d_name);
			add_dir(path);
			snprintf(path, sizeof path, "%s/%s/ports/%s/hw_counters", class, d->d_name, p->d_name);
			add_dir(path);
		}
		closedir(ports);
	}
	closedir(devs);
	printf("%zu files\n", n);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		for (size_t i = 0; i < n; i++)
			if (pread(fds[i], buf, sizeof buf, 0) < 0)
				buf[0] = 0;
		next.tv_nsec += (long)(interval * 1e9);
		next.tv_sec += next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		gz_stale = 1;
		while (lfd >= 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (next.tv_sec - now.tv_sec) * 1000 + (next.tv_nsec - now.tv_nsec) / 1000000;
			if (ms <= 0)
				break;
			struct pollfd p = { lfd, POLLIN, 0 };
			if (poll(&p, 1, (int)ms) > 0)
				answer(lfd);
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}
