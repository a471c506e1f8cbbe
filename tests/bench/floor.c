/* The floor for sysfs mode (make bench-cadence): opens every file the agent
 * reads in a steady cycle under ROOT/class/infiniband (each port's state,
 * phys_state, rate, counters/ and hw_counters/, each device's hw_counters/,
 * less hw_counters/lifespan, a setting), holds them open, and preads each
 * once per interval into one buffer. No parsing, no output: what any
 * program reading these files at that cadence must pay at least.
 * Usage: floor ROOT [INTERVAL_S]   (runs until killed; prints the file count) */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
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

int main(int argc, char **argv)
{
	char class[4096], path[4096];
	DIR *devs, *ports;
	struct dirent *d, *p;
	double interval = argc > 2 ? atof(argv[2]) : 1.0;
	static char buf[4096];
	struct timespec next;

	if (argc < 2) {
		fprintf(stderr, "usage: floor ROOT [INTERVAL_S]\n");
		return 2;
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
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}
