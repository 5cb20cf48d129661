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
 *   floor kept  as floor iso, but the namespaces outlive a run: their
 *               init is a small copy of this program that starts the
 *               service, and when it dies kills what is left of the run
 *               in the namespace and starts it again at once, in the
 *               same namespaces and cgroup. Not a figure of any init
 *               here (wren makes a unit's namespaces afresh at every
 *               start, as systemd does): the least a restart would cost
 *               an init that kept them, without even telling PID 1.
 *               Only with bench/inits -i floor-kept.
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

static int iso, kept, units = -1;

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

/* A unit's cgroup, made at its first start. */
static void unit_cgroup(long id)
{
	char name[32];
	snprintf(name, sizeof name, "svc-%ld", id);
	if (mkdirat(units, name, 0755) != 0)
		perror("floor: mkdir");
	int cg = openat(units, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	put(cg, "memory.max", "16777216");
	close(cg);
}

/* floor kept: the namespace's init, for good. A restart is the
 * service's exit, the kill of what else the run left (kill(-1) in a PID
 * namespace spares its init), the reaping, and a vfork and execve. */
static void keep(char *path, char **argv, char **envp)
{
	for (;;) {
		pid_t s = vfork();
		if (s == 0) {
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

static pid_t start(long id)
{
	char path[48], arg[24];
	snprintf(path, sizeof path, "/svc/%ld/svc", id);
	snprintf(arg, sizeof arg, "%ld", id);
	char *argv[] = {path, arg, NULL};
	char *envp[] = {NULL};
	if (!iso) {
		pid_t p = vfork();
		if (p == 0) {
			execve(path, argv, envp);
			_exit(127);
		}
		if (p < 0)
			fprintf(stderr, "floor: start %ld: %s\n", id, strerror(errno));
		return p;
	}
	char name[32];
	snprintf(name, sizeof name, "svc-%ld", id);
	int cg = openat(units, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct clone3_args a = {
		.flags = INTO_CGROUP | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)cg,
	};
	/* Without CLONE_VM this is a fork: the child runs on a copy. */
	long p = syscall(SYS_clone3, &a, sizeof a);
	if (p == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    sethostname(name, strlen(name)) != 0 ||
		    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			_exit(126);
		if (kept)
			keep(path, argv, envp);
		execve(path, argv, envp);
		_exit(127);
	}
	if (p < 0)
		fprintf(stderr, "floor: start %ld: %s\n", id, strerror(errno));
	close(cg);
	return (pid_t)p;
}

int main(int argc, char **argv)
{
	kept = argc > 1 && !strcmp(argv[1], "kept");
	iso = kept || (argc > 1 && !strcmp(argv[1], "iso"));
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
	if (iso)
		cgroups();
	for (long i = 1; i <= n; i++) {
		if (iso)
			unit_cgroup(i);
		pids[i] = start(i);
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
