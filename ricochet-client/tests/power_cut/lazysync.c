/*
 * lazysync: a power cut for one directory, by LD_PRELOAD.
 *
 * A power cut keeps what reached stable storage and nothing else: the
 * content a file had at its last fsync/fdatasync, and the names a directory
 * had at its last fsync. This library records exactly that for the files
 * directly in $LAZYSYNC_DIR: after every successful fsync or fdatasync of
 * such a file it copies the file's whole content to $LAZYSYNC_SHADOW/<name>,
 * and after every fsync of the directory itself it writes the names then in
 * it to $LAZYSYNC_SHADOW/.names. The process runs on the real files; the
 * test kills it with SIGKILL and puts the directory back to what the shadow
 * says (ricochet-client/tests/power_cut.rs, `cut`): every write that was
 * not synced is lost, as in Jepsen's LazyFS.
 *
 * Not modelled: subdirectories, the directory's own entry in its parent,
 * sync_file_range, msync, O_SYNC/O_DSYNC writes (SQLite uses none of them
 * here), and a disk that reorders or tears a synced write.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The path `fd` is open on, or -1. */
static ssize_t fd_path(int fd, char *out, size_t size) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, size - 1);
    if (n < 0 || (size_t)n >= size - 1) return -1;
    out[n] = '\0';
    return n;
}

/* Writes `len` bytes to `path` through a temporary file and a rename, so
 * that the test never reads half a shadow. */
static void put(const char *shadow, const char *name, const char *data, size_t len) {
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", shadow, name);
    snprintf(final, sizeof final, "%s/%s", shadow, name);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) abort();
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(out, data + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) abort();
        done += (size_t)n;
    }
    close(out);
    if (rename(tmp, final) != 0) abort();
}

/* Records what `fd` holds now, if it is in the watched directory. */
static void record(int fd) {
    const char *dir = getenv("LAZYSYNC_DIR");
    const char *shadow = getenv("LAZYSYNC_SHADOW");
    if (!dir || !shadow) return;
    char path[PATH_MAX];
    if (fd_path(fd, path, sizeof path) < 0) return;
    size_t dir_len = strlen(dir);
    if (strncmp(path, dir, dir_len) != 0) return;
    if (path[dir_len] == '\0') {
        /* The directory: its names. */
        DIR *d = opendir(dir);
        if (!d) abort();
        size_t cap = 4096, len = 0;
        char *names = malloc(cap);
        if (!names) abort();
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
                continue;
            size_t n = strlen(e->d_name);
            while (len + n + 2 > cap) {
                cap *= 2;
                names = realloc(names, cap);
                if (!names) abort();
            }
            memcpy(names + len, e->d_name, n);
            len += n;
            names[len++] = '\n';
        }
        closedir(d);
        put(shadow, ".names", names, len);
        free(names);
        return;
    }
    if (path[dir_len] != '/' || strchr(path + dir_len + 1, '/') != NULL) return;
    const char *name = path + dir_len + 1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    size_t size = (size_t)st.st_size;
    char *data = malloc(size ? size : 1);
    if (!data) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, data + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) abort();
        if (n == 0) break;
        done += (size_t)n;
    }
    put(shadow, name, data, done);
    free(data);
}

/* After a sync call returned `result` for `fd`: records what is now
 * stable, keeping the caller's errno. */
static int synced(int result, int fd) {
    if (result == 0) {
        int saved = errno;
        pthread_mutex_lock(&lock);
        record(fd);
        pthread_mutex_unlock(&lock);
        errno = saved;
    }
    return result;
}

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

int fsync(int fd) {
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return synced(real_fsync(fd), fd);
}

int fdatasync(int fd) {
    if (!real_fdatasync) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return synced(real_fdatasync(fd), fd);
}
