/*
 * detach: run PROGRAM in a session of its own with every signal at its default action and
 * none blocked, keeping the pid (exec, no fork). Stage 0 starts the workload through it as a
 * shell background job, which would otherwise inherit SIGINT and SIGQUIT ignored. Part of
 * Volant's stage 0 (kernels/detach/build.ts compiles it static with musl-gcc or gcc).
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void say(const char *a, const char *b) {
	write(2, "detach: ", 8);
	write(2, a, strlen(a));
	if (b) {
		write(2, " ", 1);
		write(2, b, strlen(b));
	}
	write(2, "\n", 1);
}

int main(int argc, char **argv) {
	if (argc < 2 || argv[1][0] != '/') {
		say("usage: detach /ABSOLUTE/PROGRAM [ARG]...", 0);
		return 2;
	}
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < 65; s++) sigaction(s, &dfl, 0); /* KILL, STOP and 32-33 refuse: fine */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	if (setsid() < 0) {
		say("setsid failed", 0);
		return 1;
	}
	execv(argv[1], argv + 1);
	say("cannot exec", argv[1]);
	return 127;
}
