/* What a second thread costs each pread (make bench-cadence's floor is
 * single-threaded, the agent is not): 848 descriptors of one file, each
 * pread 200 times, five rounds, alone and then beside an idle thread. With
 * a file table shared between threads the kernel takes a reference on the
 * file for every read (fdget), which a single-threaded process skips.
 * Usage: cc -O2 -pthread tests/bench/pread_threads.c -o /tmp/pread_threads
 *        /tmp/pread_threads FILE   (prints ns per pread, alone, beside a thread, and
 *        beside a thread after unshare(CLONE_FILES)) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define FILES 848
#ifndef ROUNDS
#define ROUNDS 5
#endif

static void *idle(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static double ns_per_pread(const int *fds)
{
	static char buf[4096];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int round = 0; round < 200; round++)
		for (int i = 0; i < FILES; i++)
			if (pread(fds[i], buf, sizeof buf, 0) < 0)
				buf[0] = 0;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (200.0 * FILES);
}

int main(int argc, char **argv)
{
	int fds[FILES];
	pthread_t t;
	if (argc < 2) {
		fprintf(stderr, "usage: pread_threads FILE\n");
		return 2;
	}
	for (int i = 0; i < FILES; i++)
		if ((fds[i] = open(argv[1], O_RDONLY | O_CLOEXEC)) < 0)
			return perror(argv[1]), 1;
	for (int r = 0; r < ROUNDS; r++)
		printf("alone %.0f ns/pread\n", ns_per_pread(fds));
	if (pthread_create(&t, NULL, idle, NULL))
		return 1;
	for (int r = 0; r < ROUNDS; r++)
		printf("beside a thread %.0f ns/pread\n", ns_per_pread(fds));
	/* A private copy of the descriptor table for this thread: the other
	 * thread keeps the old one, and reads here are a single table's again. */
	if (unshare(CLONE_FILES))
		return perror("unshare"), 1;
	for (int r = 0; r < ROUNDS; r++)
		printf("beside a thread, table unshared %.0f ns/pread\n", ns_per_pread(fds));
	return 0;
}
