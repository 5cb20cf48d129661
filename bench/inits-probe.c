/*
 * Guest helper of bench/inits, built static for aarch64 by bench/inits and
 * installed as /bench/probe in every image of the suite. One program, the
 * same in every image, so that no init is timed with a different service
 * or a different clock. What it does depends on the name it runs under:
 *
 *   t0              PID 1's first instruction: reads CLOCK_MONOTONIC into
 *                   /bench/t0.ns, forks the guest driver /bench/driver
 *                   (SCHED_IDLE), then execs the real init, whose command
 *                   line (one argument a line) is in /bench/initcmd.
 *   svc, run        a service: reads CLOCK_MONOTONIC first, writes it to
 *                   /bench/st/ID (ID = argv[1], else the basename of the
 *                   working directory: runsv and s6-supervise exec ./run in
 *                   the service directory /svc/ID), then pauses for ever.
 *   probe ready N SECS      waits (inotify, no polling) until N services
 *                   wrote their stamp (gives up after SECS without a new
 *                   one); prints boot_ms = latest stamp - t0 and first_ms
 *                   = earliest stamp - t0.
 *   probe restart ID        SIGKILLs service ID, waits for its new
 *                   instance's stamp; prints restart_ms = stamp - kill time.
 *   probe cpu               PID 1's time on the CPU from t0 until now
 *                   (/proc/1/schedstat, less the kernel's boot that t0
 *                   found in CLOCK_PROCESS_CPUTIME_ID).
 *   probe mem               PID 1's and the supervision tree's Rss, Pss,
 *                   Anonymous from smaps_rollup (tree = PID 1 plus every
 *                   ancestor of a service process).
 *   probe idle SECS         PID 1's (and the tree's) context switches
 *                   (voluntary + nonvoluntary) over SECS seconds.
 *
 * Figures are printed as "@@M NAME VALUE" lines, read by bench/inits.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAMPS "/bench/st"
#define MAXP 16384

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static int read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	return (int)n;
}

static unsigned long long read_ns(const char *path)
{
	char b[64];
	if (read_file(path, b, sizeof b) <= 0)
		return 0;
	return strtoull(b, NULL, 10);
}

static void write_ns(const char *path, unsigned long long ns)
{
	char b[32];
	int n = snprintf(b, sizeof b, "%llu\n", ns);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return;
	if (write(fd, b, (size_t)n) != n)
		perror(path);
	close(fd);
}

static void metric(const char *name, double v)
{
	printf("@@M %s %.3f\n", name, v);
	fflush(stdout);
}

static int mode_t0(void)
{
	unsigned long long t = now_ns();
	/* PID 1 was the kernel's init thread until now: the CPU time it has
	 * is the kernel's boot, which pid1_cpu_ms leaves out. */
	struct timespec cpu;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	write_ns("/bench/t0.ns", t);
	write_ns("/bench/t0cpu.ns",
		 (unsigned long long)cpu.tv_sec * 1000000000ull + (unsigned long long)cpu.tv_nsec);
	char buf[4096];
	char *argv[64];
	int argc = 0;
	if (read_file("/bench/initcmd", buf, sizeof buf) > 0) {
		for (char *s = strtok(buf, "\n"); s && argc < 63; s = strtok(NULL, "\n"))
			argv[argc++] = s;
	}
	if (argc == 0)
		argv[argc++] = "/sbin/init";
	argv[argc] = NULL;
	/* The guest driver, started here the same way under every init (a
	 * child PID 1 inherits), not as one of its services. It and all it
	 * runs are SCHED_IDLE: the boot being measured runs on one CPU, and a
	 * driver of the normal class (its start-up, and a wake-up for every
	 * service's stamp while it waits for the N-th) took its time out of
	 * every init's boot_ms alike. As an idle-class task it neither
	 * preempts the boot's tasks nor gets more than a weight of 3 against
	 * their 1024 while they can run: its work moves to when the CPU has
	 * nothing else to do, mostly after the last stamp. What is measured
	 * is the same (stamps minus t0; a restart's stamp minus its kill). */
	if (fork() == 0) {
		struct sched_param sp = {.sched_priority = 0};
		if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
			perror("sched_setscheduler SCHED_IDLE");
		execl("/bench/driver", "/bench/driver", (char *)NULL);
		_exit(127);
	}
	execv(argv[0], argv);
	perror(argv[0]);
	/* PID 1 must not exit: fall back to the usual init. */
	execl("/sbin/init", "/sbin/init", (char *)NULL);
	for (;;)
		pause();
	return 1;
}

static int mode_svc(int argc, char **argv)
{
	unsigned long long t = now_ns();
	char id[PATH_MAX], cwd[PATH_MAX], path[PATH_MAX + 16];
	if (argc > 1) {
		snprintf(id, sizeof id, "%s", argv[1]);
		snprintf(path, sizeof path, "/svc/%s", id);
		/* every init's service runs in /svc/ID: restart finds it there */
		if (chdir(path) != 0)
			perror(path);
	} else {
		if (!getcwd(cwd, sizeof cwd))
			return 1;
		char *b = strrchr(cwd, '/');
		snprintf(id, sizeof id, "%s", b ? b + 1 : cwd);
	}
	snprintf(path, sizeof path, STAMPS "/%s", id);
	write_ns(path, t);
	for (;;)
		pause();
}

/* Service ids are 1..n; returns 0 for any other name. */
static long svc_id(const char *name, long n)
{
	char *end;
	long v = strtol(name, &end, 10);
	return (*name && !*end && v >= 1 && v <= n) ? v : 0;
}

static int mode_ready(long n, long secs)
{
	if (n < 1)
		return 2;
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, STAMPS, IN_CLOSE_WRITE) < 0) {
		perror("inotify");
		return 1;
	}
	char *seen = calloc((size_t)n + 1, 1);
	if (!seen)
		return 1;
	long count = 0;
	DIR *d = opendir(STAMPS);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		long i = svc_id(e->d_name, n);
		if (i && !seen[i]) {
			seen[i] = 1;
			count++;
		}
	}
	if (d)
		closedir(d);
	/* Gives up when no new service started for SECS (a refused unit never
	 * starts), not after a fixed time (N = 1000 takes minutes on some). */
	unsigned long long stall = (unsigned long long)secs * 1000000000ull;
	unsigned long long deadline = now_ns() + stall;
	char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (count < n) {
		unsigned long long t = now_ns();
		if (t >= deadline)
			break;
		struct pollfd p = {.fd = in, .events = POLLIN};
		int ms = (int)((deadline - t) / 1000000ull) + 1;
		if (poll(&p, 1, ms) <= 0)
			continue;
		ssize_t r = read(in, ev, sizeof ev);
		for (char *q = ev; r > 0 && q < ev + r;) {
			struct inotify_event *ie = (struct inotify_event *)q;
			long i = ie->len ? svc_id(ie->name, n) : 0;
			if (i && !seen[i]) {
				seen[i] = 1;
				count++;
				deadline = now_ns() + stall;
			}
			q += sizeof *ie + ie->len;
		}
	}
	metric("started", (double)count);
	if (count < n)
		return 1;
	unsigned long long t0 = read_ns("/bench/t0.ns"), last = 0, first = ~0ull;
	char path[64];
	for (long i = 1; i <= n; i++) {
		snprintf(path, sizeof path, STAMPS "/%ld", i);
		unsigned long long s = 0;
		for (int tries = 0; tries < 100 && !(s = read_ns(path)); tries++)
			usleep(10000);
		if (s > last)
			last = s;
		if (s && s < first)
			first = s;
	}
	if (!t0 || last < t0 || first < t0) {
		fprintf(stderr, "probe: no t0 stamp or a service stamp before it\n");
		return 1;
	}
	metric("first_ms", (double)(first - t0) / 1e6);
	metric("boot_ms", (double)(last - t0) / 1e6);
	return 0;
}

struct proc {
	int pid, ppid, svc, mark;
};
static struct proc procs[MAXP];
static int nprocs;

/* Reads every process's parent and whether it is a bench service. */
static void scan_procs(void)
{
	nprocs = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[64], buf[512];
	while (d && (e = readdir(d)) && nprocs < MAXP) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		if (read_file(path, buf, sizeof buf) <= 0)
			continue;
		char *l = strchr(buf, '('), *r = strrchr(buf, ')');
		if (!l || !r)
			continue;
		*r = 0;
		int ppid = 0;
		char st;
		if (sscanf(r + 2, "%c %d", &st, &ppid) != 2)
			continue;
		struct proc *p = &procs[nprocs++];
		p->pid = pid;
		p->ppid = ppid;
		p->svc = !strcmp(l + 1, "svc") || !strcmp(l + 1, "run");
		p->mark = 0;
	}
	if (d)
		closedir(d);
}

static struct proc *find(int pid)
{
	for (int i = 0; i < nprocs; i++)
		if (procs[i].pid == pid)
			return &procs[i];
	return NULL;
}

/* The supervision tree: PID 1 and every ancestor of a service. */
static int mark_tree(void)
{
	int marked = 0;
	for (int i = 0; i < nprocs; i++) {
		if (!procs[i].svc)
			continue;
		struct proc *p = find(procs[i].ppid);
		for (int depth = 0; p && !p->mark && depth < 64; depth++) {
			p->mark = 1;
			marked++;
			p = p->pid == 1 ? NULL : find(p->ppid);
		}
	}
	struct proc *one = find(1);
	if (one && !one->mark) {
		one->mark = 1;
		marked++;
	}
	return marked;
}

static long field_kb(const char *buf, const char *key)
{
	const char *s = strstr(buf, key);
	return s ? strtol(s + strlen(key), NULL, 10) : -1;
}

static int rollup(int pid, long *rss, long *pss, long *anon)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
	if (read_file(path, buf, sizeof buf) <= 0)
		return -1;
	*rss = field_kb(buf, "\nRss:");
	*pss = field_kb(buf, "\nPss:");
	*anon = field_kb(buf, "\nAnonymous:");
	return (*rss < 0 || *pss < 0 || *anon < 0) ? -1 : 0;
}

/* PID 1's time on the CPU since t0 (the first field of
 * /proc/1/schedstat, ns, less what t0 found), read as soon as every
 * service has started: how much of the boot was PID 1's own work,
 * whatever the init (runit's and s6's supervisors are other processes). */
static int mode_cpu(void)
{
	unsigned long long ns = read_ns("/proc/1/schedstat");
	unsigned long long at_t0 = read_ns("/bench/t0cpu.ns");
	if (!ns || ns < at_t0) {
		fprintf(stderr, "probe: no /proc/1/schedstat\n");
		return 1;
	}
	metric("pid1_cpu_ms", (double)(ns - at_t0) / 1e6);
	return 0;
}

static int mode_mem(void)
{
	long rss, pss, anon;
	if (rollup(1, &rss, &pss, &anon) != 0) {
		fprintf(stderr, "probe: no /proc/1/smaps_rollup\n");
		return 1;
	}
	metric("pid1_rss_kb", (double)rss);
	metric("pid1_pss_kb", (double)pss);
	metric("pid1_anon_kb", (double)anon);
	scan_procs();
	int marked = mark_tree();
	long trss = 0, tpss = 0, tanon = 0;
	for (int i = 0; i < nprocs; i++) {
		if (!procs[i].mark || rollup(procs[i].pid, &rss, &pss, &anon) != 0)
			continue;
		trss += rss;
		tpss += pss;
		tanon += anon;
	}
	metric("tree_procs", (double)marked);
	metric("tree_pss_kb", (double)tpss);
	metric("tree_anon_kb", (double)tanon);
	return 0;
}

static long ctxt(int pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if (read_file(path, buf, sizeof buf) <= 0)
		return -1;
	long v = field_kb(buf, "\nvoluntary_ctxt_switches:");
	long nv = field_kb(buf, "\nnonvoluntary_ctxt_switches:");
	return (v < 0 || nv < 0) ? -1 : v + nv;
}

static int mode_idle(long secs)
{
	scan_procs();
	mark_tree();
	long before1 = ctxt(1), tree = 0;
	long *before = calloc((size_t)nprocs + 1, sizeof *before);
	if (!before || before1 < 0)
		return 1;
	for (int i = 0; i < nprocs; i++)
		if (procs[i].mark)
			before[i] = ctxt(procs[i].pid);
	sleep((unsigned)secs);
	long after1 = ctxt(1);
	for (int i = 0; i < nprocs; i++) {
		long a = procs[i].mark ? ctxt(procs[i].pid) : -1;
		if (a >= 0 && before[i] >= 0)
			tree += a - before[i];
	}
	metric("pid1_wakeups", (double)(after1 - before1));
	metric("tree_wakeups", (double)tree);
	return 0;
}

/* The pid of service ID's current instance, or 0. */
static int svc_pid(const char *id)
{
	char want[PATH_MAX], path[64], cwd[PATH_MAX];
	snprintf(want, sizeof want, "/svc/%s", id);
	scan_procs();
	for (int i = 0; i < nprocs; i++) {
		if (!procs[i].svc)
			continue;
		snprintf(path, sizeof path, "/proc/%d/cwd", procs[i].pid);
		ssize_t n = readlink(path, cwd, sizeof cwd - 1);
		if (n <= 0)
			continue;
		cwd[n] = 0;
		if (!strcmp(cwd, want))
			return procs[i].pid;
	}
	return 0;
}

static int mode_restart(const char *id)
{
	int pid = svc_pid(id);
	if (!pid) {
		fprintf(stderr, "probe: service %s not running\n", id);
		return 1;
	}
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, STAMPS, IN_CLOSE_WRITE) < 0) {
		perror("inotify");
		return 1;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, STAMPS "/%s", id);
	unsigned long long t = now_ns();
	if (kill(pid, SIGKILL) != 0) {
		perror("kill");
		return 1;
	}
	unsigned long long deadline = t + 10000000000ull;
	char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		unsigned long long n = now_ns();
		if (n >= deadline) {
			fprintf(stderr, "probe: service %s not restarted within 10 s\n", id);
			return 1;
		}
		struct pollfd p = {.fd = in, .events = POLLIN};
		if (poll(&p, 1, (int)((deadline - n) / 1000000ull) + 1) <= 0)
			continue;
		ssize_t r = read(in, ev, sizeof ev);
		for (char *q = ev; r > 0 && q < ev + r;) {
			struct inotify_event *ie = (struct inotify_event *)q;
			if (ie->len && !strcmp(ie->name, id)) {
				unsigned long long s = read_ns(path);
				if (s > t) {
					metric("restart_ms", (double)(s - t) / 1e6);
					return 0;
				}
			}
			q += sizeof *ie + ie->len;
		}
	}
}

int main(int argc, char **argv)
{
	const char *me = strrchr(argv[0], '/');
	me = me ? me + 1 : argv[0];
	if (!strcmp(me, "t0"))
		return mode_t0();
	if (!strcmp(me, "svc") || !strcmp(me, "run"))
		return mode_svc(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "ready"))
		return mode_ready(atol(argv[2]), atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "restart"))
		return mode_restart(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "cpu"))
		return mode_cpu();
	if (argc == 2 && !strcmp(argv[1], "mem"))
		return mode_mem();
	if (argc == 3 && !strcmp(argv[1], "idle"))
		return mode_idle(atol(argv[2]));
	fprintf(stderr, "usage: probe ready N SECS | restart ID | cpu | mem | idle SECS\n");
	return 2;
}
