/*
 * A reference PID 1 for bench/inits: the least work an init can do for
 * the suite's figures, without any of a supervisor's own. Built static
 * for aarch64 by bench/inits and installed as /bench/floor in the
 * floor-bare and floor-iso images; /bench/t0 execs it as PID 1 like any
 * other init. It is not a competitor: its rows say what part of a figure
 * is the kernel's work for what is asked, and so how close wren's rows
 * can come at best.
 *
 *   floor bare  starts /svc/ID/svc ID for ID = 1..N (N from /bench/n)
 *               with a plain vfork and execve, and starts a service again
 *               the moment it dies: the "plain fork+exec" issue 10 names
 *               as the floor of a restart.
 *   floor iso   the same, each service with what the contract's default
 *               isolation asks of the kernel for every isolated unit: its
 *               own cgroup units/svc-ID (memory, pids, cpu and io enabled
 *               for units/, as PID 1 must; memory.max = 16M), entered at
 *               clone time (clone3 CLONE_INTO_CGROUP); new PID, mount,
 *               UTS and IPC namespaces; its mounts private (nothing it
 *               mounts seen outside), its hostname the unit's name, the
 *               PID namespace's own /proc.
 *               The service is its namespace's init (no reaper).
 *   floor cg    as floor bare, each service in its own cgroup
 *               units/svc-ID (memory, pids, cpu and io enabled for
 *               units/, as PID 1 must; no memory.max, as wren-bare's
 *               units have none), entered at clone time by a vfork
 *               (clone3 CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP): what
 *               the contract asks of the kernel for a unit with
 *               `namespaces = none` ("every unit NAME runs in cgroup
 *               units/NAME"). Only with bench/inits -i floor-cg.
 *   floor kept  as floor iso, but the namespaces outlive a run: their
 *               init is a small copy of this program that starts the
 *               service, and when it dies kills what is left of the run
 *               in the namespace and starts it again at once, in the
 *               same namespaces and cgroup: the least a restart that
 *               keeps them costs, without even telling PID 1. Since the
 *               thirty-first round wren's reaper restarts a unit in the
 *               namespaces it keeps too (a restart in place, which the
 *               wren-iso row times; PID 1 hears of it afterwards), but
 *               only a unit that qualifies (docs/units.md, "A restart in
 *               place": restart_delay = 0ms, ready = started, no
 *               watchdog, start_limit, seccomp or console output, ...);
 *               every other restart goes through PID 1 and gets fresh
 *               namespaces, as a start does. Only with bench/inits -i
 *               floor-kept.
 *   floor local as floor kept, with the PID namespace and its init kept,
 *               but each run in mount, UTS and IPC namespaces of its own
 *               (unshared by the child before its exec: copies of the
 *               kept ones, so what a run mounts goes with it). Only with
 *               bench/inits -i floor-local.
 *   floor spare as floor iso, with fresh namespaces at every start, but
 *               one set made ahead: a spare child waits in new PID,
 *               mount, UTS and IPC namespaces, its mounts private and its
 *               /proc mounted, in PID 1's cgroup. A start tells it the
 *               unit (a pipe); it sets the hostname and starts the
 *               service with a clone3 into the unit's cgroup, and stays
 *               as the namespace's init (a reaper, outside the unit's
 *               cgroup) until the service dies, which it tells PID 1 (a
 *               pipe) and waits 20 ms before its exit tears the
 *               namespaces down, after the new run's start (wren's
 *               reaper waits for PID 1 to have heard). 30 ms after a
 *               restart PID 1 reaps it and makes the next spare (one
 *               for the whole system, not one a unit); the boot makes
 *               one for each start just before it. (wren could not
 *               place its reaper outside the unit's cgroup: it counts
 *               in the unit's pids.max.) Only with bench/inits -i
 *               floor-spare.
 *
 * What it leaves out, and a real init cannot: a configuration to read,
 * a log, the check that a dead run left nothing in its cgroup, telling an
 * exec that failed from one that worked, the services' output, throttling
 * a crash loop, an operator's interface. For a boot, floor-iso is a lower
 * bound of what any init that isolates units as the contract says costs.
 * For a restart it is not quite: the service being its namespace's init,
 * the kernel tears the namespaces down in its exit, before the parent
 * hears of it (wren's reaper reports first and goes after).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* clone3's argument block (linux/sched.h, version 2), spelt out here so
 * that the build does not depend on how new the cross headers are. */
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};
#define INTO_CGROUP 0x200000000ull
#define CONTROLLERS "+memory +pids +cpu +io"

static int iso, bare_cg, kept, local, spare, units = -1;
/* floor spare: the child waiting in its namespaces, and its pipe. */
static pid_t spare_pid = -1;
static int spare_fd = -1;
/* floor spare: where a spare that became a unit's reaper says its
 * service died (the unit's number), before it goes. */
static int report[2] = {-1, -1};

static int put(int dir, const char *file, const char *s)
{
	int fd = openat(dir, file, O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && write(fd, s, strlen(s)) >= 0;
	if (!ok)
		fprintf(stderr, "floor: %s: %s\n", file, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ok;
}

/* All four controllers in one write; one at a time if the kernel lacks
 * one (it refuses the whole write then), as wren does. */
static void controllers(int dir)
{
	if (put(dir, "cgroup.subtree_control", CONTROLLERS))
		return;
	put(dir, "cgroup.subtree_control", "+memory");
	put(dir, "cgroup.subtree_control", "+pids");
	put(dir, "cgroup.subtree_control", "+cpu");
	put(dir, "cgroup.subtree_control", "+io");
}

/* What PID 1 must do once for the units' cgroups. */
static void cgroups(void)
{
	if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
	    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "nsdelegate,memory_recursiveprot") != 0)
		perror("floor: mount");
	int root = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	controllers(root);
	if (mkdirat(root, "units", 0755) != 0)
		perror("floor: units");
	units = openat(root, "units", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	controllers(units);
	close(root);
}

/* Service ID's program, its argument and its unit's (cgroup's, host's)
 * name. */
struct svc {
	char path[48], arg[24], name[32];
};

static void svc_names(long id, struct svc *s)
{
	snprintf(s->path, sizeof s->path, "/svc/%ld/svc", id);
	snprintf(s->arg, sizeof s->arg, "%ld", id);
	snprintf(s->name, sizeof s->name, "svc-%ld", id);
}

/* A unit's cgroup, made at its first start. */
static void unit_cgroup(long id)
{
	struct svc sv;
	svc_names(id, &sv);
	if (mkdirat(units, sv.name, 0755) != 0)
		perror("floor: mkdir");
	if (bare_cg)
		return;
	int dir = openat(units, sv.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	put(dir, "memory.max", "16777216");
	close(dir);
}

/* floor kept: the namespace's init, for good. A restart is the
 * service's exit, the kill of what else the run left (kill(-1) in a PID
 * namespace spares its init), the reaping, and a vfork and execve. */
static void keep(char *path, char **argv, char **envp, const char *name)
{
	for (;;) {
		pid_t s = vfork();
		if (s == 0) {
			/* floor local: each run in mount, UTS and IPC
			 * namespaces of its own (copies of the kept ones). */
			if (local && (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) != 0 ||
				      sethostname(name, strlen(name)) != 0))
				_exit(126);
			execve(path, argv, envp);
			_exit(127);
		}
		if (s < 0)
			_exit(125);
		pid_t p;
		while ((p = waitpid(-1, NULL, 0)) != s && (p >= 0 || errno == EINTR))
			;
		kill(-1, SIGKILL);
		while (waitpid(-1, NULL, 0) >= 0 || errno == EINTR)
			;
	}
}

/* In a new PID and mount namespace: the mounts private (nothing mounted
 * here seen outside) and the namespace's own /proc. */
static int ns_mounts(void)
{
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	       mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0;
}

static pid_t start(long id)
{
	struct svc sv;
	svc_names(id, &sv);
	char *path = sv.path, *name = sv.name;
	char *argv[] = {sv.path, sv.arg, NULL};
	char *envp[] = {NULL};
	if (!iso && !bare_cg) {
		pid_t p = vfork();
		if (p == 0) {
			execve(path, argv, envp);
			_exit(127);
		}
		if (p < 0)
			fprintf(stderr, "floor: start %ld: %s\n", id, strerror(errno));
		return p;
	}
	int cg = openat(units, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* floor cg: a vfork into the cgroup. No stack given, so the child
	 * runs on this one while this process waits for its exec, as
	 * vfork(2) does. Sound only where syscall() keeps nothing on the
	 * stack across the call, as glibc's aarch64 one (the bench's guest)
	 * does; x86_64's `call` would leave its return address there for the
	 * child's execve call to overwrite. Else without CLONE_VM a fork:
	 * the child runs on a copy. */
	struct clone3_args a = {
		.flags = INTO_CGROUP | (bare_cg ? CLONE_VM | CLONE_VFORK
						: CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC),
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)cg,
	};
	long p = syscall(SYS_clone3, &a, sizeof a);
	if (p == 0) {
		if (!bare_cg) {
			if (ns_mounts() || sethostname(name, strlen(name)) != 0)
				_exit(126);
			if (kept)
				keep(path, argv, envp, name);
		}
		execve(path, argv, envp);
		_exit(127);
	}
	if (p < 0)
		fprintf(stderr, "floor: start %ld: %s\n", id, strerror(errno));
	close(cg);
	return (pid_t)p;
}

/* floor spare: the next start's namespaces, made ahead. The spare
 * stays in PID 1's cgroup: moving a process into another (a write of
 * cgroup.procs) waits for an RCU grace period (cgroup_threadgroup_rwsem),
 * milliseconds; a clone3 into it does not. */
static void make_spare(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	struct clone3_args a = {
		.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC,
		.exit_signal = SIGCHLD,
	};
	long c = syscall(SYS_clone3, &a, sizeof a);
	if (c == 0) {
		close(p[1]);
		if (ns_mounts())
			_exit(126);
		long id;
		if (read(p[0], &id, sizeof id) != sizeof id)
			_exit(125);
		struct svc sv;
		svc_names(id, &sv);
		char *argv[] = {sv.path, sv.arg, NULL};
		char *envp[] = {NULL};
		int cg = openat(units, sv.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct clone3_args b = {
			.flags = INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cg,
		};
		long s = -1;
		if (sethostname(sv.name, strlen(sv.name)) == 0 && cg >= 0)
			s = syscall(SYS_clone3, &b, sizeof b);
		if (s == 0) {
			execve(sv.path, argv, envp);
			_exit(127);
		}
		if (s < 0) {
			/* Said, and told PID 1, which starts the unit again. */
			fprintf(stderr, "floor: spare for %ld: %s\n", id, strerror(errno));
			if (write(report[1], &id, sizeof id) != sizeof id)
				_exit(123);
			_exit(124);
		}
		/* The namespace's init: it reaps until the service is gone,
		 * says so, and its exit ends the namespace and what is left
		 * in it (after PID 1 heard, as wren's reaper). */
		pid_t w;
		while ((w = waitpid(-1, NULL, 0)) != s && (w >= 0 || errno == EINTR))
			;
		if (write(report[1], &id, sizeof id) != sizeof id)
			_exit(123);
		/* The teardown after the new run's start (wren's reaper
		 * waits for PID 1 to close its report pipe). */
		struct timespec t = {0, 20000000};
		nanosleep(&t, NULL);
		_exit(0);
	}
	close(p[0]);
	if (c < 0) {
		fprintf(stderr, "floor: spare: %s\n", strerror(errno));
		close(p[1]);
		return;
	}
	spare_pid = (pid_t)c;
	spare_fd = p[1];
}

/* floor spare: the spare told to run unit ID; -1 when there is none or
 * it could not be told (then it goes). */
static pid_t use_spare(long id)
{
	if (spare_pid < 0)
		return -1;
	int ok = write(spare_fd, &id, sizeof id) == sizeof id;
	close(spare_fd);
	pid_t s = spare_pid;
	spare_fd = spare_pid = -1;
	if (!ok) {
		kill(s, SIGKILL);
		return -1;
	}
	return s;
}

int main(int argc, char **argv)
{
	local = argc > 1 && !strcmp(argv[1], "local");
	kept = local || (argc > 1 && !strcmp(argv[1], "kept"));
	spare = argc > 1 && !strcmp(argv[1], "spare");
	iso = kept || spare || (argc > 1 && !strcmp(argv[1], "iso"));
	bare_cg = argc > 1 && !strcmp(argv[1], "cg");
	char buf[32] = "";
	int fd = open("/bench/n", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, buf, sizeof buf - 1);
		buf[r > 0 ? r : 0] = 0;
		close(fd);
	}
	long n = atol(buf);
	pid_t *pids = calloc((size_t)n + 1, sizeof *pids);
	if (!pids)
		n = 0;
	/* Without its report pipe, floor spare is floor iso. */
	if (spare && pipe2(report, O_CLOEXEC) != 0) {
		perror("floor: pipe");
		spare = 0;
	}
	if (iso || bare_cg)
		cgroups();
	for (long i = 1; i <= n; i++) {
		if (iso || bare_cg)
			unit_cgroup(i);
		if (!spare)
			pids[i] = start(i);
	}
	if (spare) {
		/* Every start through a spare made just before it. */
		for (long i = 1; i <= n; i++) {
			make_spare();
			pids[i] = use_spare(i);
		}
		make_spare();
		for (;;) {
			long id;
			ssize_t r = read(report[0], &id, sizeof id);
			if (r != sizeof id || id < 1 || id > n)
				continue;
			if (spare_pid < 0)
				make_spare();
			pids[id] = use_spare(id);
			/* Off the restart's window (the new service runs to
			 * its first call first): the reaper that reported,
			 * gone 20 ms after its report, is reaped and the next
			 * spare made. */
			struct timespec t = {0, 30000000};
			nanosleep(&t, NULL);
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			make_spare();
		}
	}
	for (;;) {
		pid_t p = waitpid(-1, NULL, 0);
		if (p < 0) {
			if (errno == ECHILD)
				pause();
			continue;
		}
		for (long i = 1; i <= n; i++) {
			if (pids[i] == p) {
				pids[i] = start(i);
				break;
			}
		}
	}
}
