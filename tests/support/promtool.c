/* `promtool check metrics` on a temporary file (see promtool.h). */
#include "promtool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROMTOOL_BIN "/usr/bin/promtool"

int promtool_check(const char *text, size_t len, char *why, size_t why_cap)
{
    if (access(PROMTOOL_BIN, X_OK) != 0) {
        snprintf(why, why_cap, "%s not installed (scripts/deps.sh installs it)", PROMTOOL_BIN);
        return -ENOENT;
    }
    char path[] = "/tmp/promtool_check.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(why, why_cap, "mkstemp: %s", strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    if (off != len) {
        unlink(path);
        snprintf(why, why_cap, "cannot write %s", path);
        return -1;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", PROMTOOL_BIN, path);
    FILE *p = popen(cmd, "r");
    if (!p) {
        unlink(path);
        snprintf(why, why_cap, "popen: %s", strerror(errno));
        return -1;
    }
    size_t got = fread(why, 1, why_cap ? why_cap - 1 : 0, p);
    if (why_cap)
        why[got] = '\0';
    int st = pclose(p);
    unlink(path);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}
