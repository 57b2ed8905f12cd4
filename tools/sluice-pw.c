/* tools/sluice-pw.c: make and check stored passwords, like `doveadm pw`.
 *
 * The values are Dovecot's "{SCHEME}..." format (auth/pwscheme.h), so what
 * this prints can go into a passdb read by sluice or by Dovecot, and values
 * made by doveadm can be checked here. Exit status: 0 made / verified,
 * 1 password mismatch, 2 usage or any other error. */
#include "auth/pwscheme.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define SLUICE_PW_DEFAULT_SCHEME "SHA512-CRYPT"
#define SLUICE_PW_VERIFY_DEFAULT_SCHEME "MD5" /* Dovecot SQL's default_pass_scheme */
#define SLUICE_PW_LINE_BYTES_MAX (PW_PLAIN_BYTES_MAX + 3)

enum { EXIT_MATCH = 0, EXIT_MISMATCH = 1, EXIT_ERROR = 2 };

static const char sluice_pw_usage[] =
    "usage: sluice-pw [-s SCHEME] [-u USER] [-p PASSWORD]\n"
    "       sluice-pw -t STORED [-s SCHEME] [-u USER] [-p PASSWORD]\n"
    "       sluice-pw -l\n"
    "  (no -t)    print a new stored value {SCHEME}... with a fresh salt;\n"
    "             SCHEME defaults to " SLUICE_PW_DEFAULT_SCHEME ", and may carry .HEX or .B64\n"
    "  -t STORED  check PASSWORD against STORED: exit 0 match, 1 mismatch, 2 error;\n"
    "             -s then names the scheme of a STORED without a {SCHEME} prefix\n"
    "             (default " SLUICE_PW_VERIFY_DEFAULT_SCHEME ", as Dovecot SQL)\n"
    "  -u USER    login name; DIGEST-MD5 needs it (user@realm)\n"
    "  -p PASS    the password; without -p it is read from the terminal without\n"
    "             echo, or as the first line of standard input\n"
    "  -l         list the schemes\n";

/* Reads one line (without its CR/LF) into buf; false on EOF, error or a
 * line longer than the buffer. */
static bool sluice_pw_read_line(FILE *in, char *buf, size_t len)
{
    if (fgets(buf, (int)len, in) == NULL) {
        return false;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    } else if (!feof(in)) {
        return false; /* longer than the buffer */
    }
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    return true;
}

/* Prompts on stderr and reads a line from the terminal with echo off. */
static bool sluice_pw_prompt(const char *prompt, char *buf, size_t len)
{
    struct termios old;
    struct termios noecho;
    if (tcgetattr(STDIN_FILENO, &old) != 0) {
        return false;
    }
    noecho = old;
    noecho.c_lflag &= ~(tcflag_t)ECHO;
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) != 0) {
        return false;
    }
    bool ok = sluice_pw_read_line(stdin, buf, len);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return ok;
}

/* The password into buf: -p, else the terminal (twice for a new value),
 * else the first line of stdin. */
static bool sluice_pw_get(const char *arg, bool confirm, char *buf, size_t len)
{
    if (arg != NULL) {
        size_t n = strlen(arg);
        if (n >= len) {
            return false;
        }
        memcpy(buf, arg, n + 1);
        return true;
    }
    if (!isatty(STDIN_FILENO)) {
        return sluice_pw_read_line(stdin, buf, len);
    }
    if (!sluice_pw_prompt(confirm ? "Enter new password: " : "Enter password to verify: ", buf,
                          len)) {
        return false;
    }
    if (!confirm) {
        return true;
    }
    char again[SLUICE_PW_LINE_BYTES_MAX];
    bool same =
        sluice_pw_prompt("Retype new password: ", again, sizeof(again)) && strcmp(buf, again) == 0;
    explicit_bzero(again, sizeof(again));
    if (!same) {
        fprintf(stderr, "sluice-pw: passwords do not match\n");
    }
    return same;
}

static int sluice_pw_verify(const char *stored, const char *scheme, const char *user,
                            const char *pw)
{
    pw_status st = pw_verify(stored, scheme != NULL ? scheme : SLUICE_PW_VERIFY_DEFAULT_SCHEME,
                             user, (const uint8_t *)pw, strlen(pw));
    switch (st) {
    case PW_OK:
        printf("%s (verified)\n", stored);
        return EXIT_MATCH;
    case PW_MISMATCH:
        fprintf(stderr, "sluice-pw: password mismatch\n");
        return EXIT_MISMATCH;
    case PW_UNSUPPORTED:
    case PW_BAD_STORED:
    case PW_INTERNAL:
        break;
    }
    fprintf(stderr, "sluice-pw: cannot verify: %s\n", pw_status_name(st));
    return EXIT_ERROR;
}

static int sluice_pw_make(const char *scheme, const char *user, const char *pw)
{
    char out[PW_HASH_BYTES_MAX];
    pw_status st = pw_hash(scheme != NULL ? scheme : SLUICE_PW_DEFAULT_SCHEME, (const uint8_t *)pw,
                           strlen(pw), user, out, sizeof(out));
    if (st != PW_OK) {
        fprintf(stderr, "sluice-pw: cannot make a %s value: %s%s\n",
                scheme != NULL ? scheme : SLUICE_PW_DEFAULT_SCHEME, pw_status_name(st),
                st == PW_UNSUPPORTED ? " (unknown scheme, password too long, or -u missing)" : "");
        return EXIT_ERROR;
    }
    printf("%s\n", out);
    explicit_bzero(out, sizeof(out));
    return EXIT_MATCH;
}

int main(int argc, char **argv)
{
    const char *scheme = NULL;
    const char *user = NULL;
    const char *pw_arg = NULL;
    const char *stored = NULL;
    bool list = false;
    int opt;
    while ((opt = getopt(argc, argv, "s:u:p:t:lh")) != -1) {
        switch (opt) {
        case 's':
            scheme = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'p':
            pw_arg = optarg;
            break;
        case 't':
            stored = optarg;
            break;
        case 'l':
            list = true;
            break;
        case 'h':
            fputs(sluice_pw_usage, stdout);
            return EXIT_MATCH;
        default:
            fputs(sluice_pw_usage, stderr);
            return EXIT_ERROR;
        }
    }
    if (optind != argc) {
        fputs(sluice_pw_usage, stderr);
        return EXIT_ERROR;
    }
    if (list) {
        for (size_t i = 0; pw_scheme_name(i) != NULL; i++) {
            printf("%s\n", pw_scheme_name(i));
        }
        return EXIT_MATCH;
    }
    if (scheme != NULL && !pw_scheme_known(scheme)) {
        fprintf(stderr, "sluice-pw: unknown scheme %s (see sluice-pw -l)\n", scheme);
        return EXIT_ERROR;
    }
    char pw[SLUICE_PW_LINE_BYTES_MAX];
    if (!sluice_pw_get(pw_arg, stored == NULL, pw, sizeof(pw))) {
        fprintf(stderr, "sluice-pw: no password read (or longer than %d bytes)\n",
                PW_PLAIN_BYTES_MAX);
        return EXIT_ERROR;
    }
    int rc = stored != NULL ? sluice_pw_verify(stored, scheme, user, pw)
                            : sluice_pw_make(scheme, user, pw);
    explicit_bzero(pw, sizeof(pw));
    return rc;
}
