/* loadgen: runs the challenge's scenario (or a fixed rate) against a target and
 * prints a JSON report (and, with --html, a page of charts). Wiring only: flags,
 * the run, the reports, the files. Exit 0 when the run completed (whatever the
 * score), 1 when it could not be done, 2 for bad flags. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "html.h"
#include "opts.h"
#include "report.h"
#include "run.h"

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    int rc = (n == len) ? 0 : -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int main(int argc, char **argv)
{
    struct lg_opts o;
    char err[256];
    if (lg_opts_parse(argc, argv, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "loadgen: %s\n%s", err, lg_opts_usage());
        return 2;
    }
    if (o.help) {
        fputs(lg_opts_usage(), stdout);
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "loadgen: curl init failed\n");
        return 1;
    }
    struct lg_results *r = lg_results_new(&o);
    if (r == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        curl_global_cleanup();
        return 1;
    }
    int rc = lg_run(&o, r);
    if (rc != 0)
        fprintf(stderr, "loadgen: run not done: %s\n",
                r->setup_error[0] ? r->setup_error : strerror(-rc));

    int status = rc == 0 ? 0 : 1;
    char *report = lg_report_render(&o, r, rc);
    if (report == NULL) {
        fprintf(stderr, "loadgen: out of memory rendering the report\n");
        status = 1;
    } else {
        if (!lg_json_valid(report, strlen(report))) {
            fprintf(stderr, "loadgen: bug: the report is not valid JSON\n");
            status = 1;
        }
        fputs(report, stdout);
        fflush(stdout);
        if (o.report_path != NULL) {
            int wrc = write_file(o.report_path, report, strlen(report));
            if (wrc != 0) {
                fprintf(stderr, "loadgen: write %s failed: %s\n", o.report_path, strerror(-wrc));
                status = 1;
            }
        }
        free(report);
    }
    if (o.html_path != NULL) {
        char *html = lg_html_render(&o, r, rc);
        int wrc = html ? write_file(o.html_path, html, strlen(html)) : -ENOMEM;
        if (wrc != 0) {
            fprintf(stderr, "loadgen: write %s failed: %s\n", o.html_path, strerror(-wrc));
            status = 1;
        }
        free(html);
    }
    if (o.accepted_file != NULL) {
        int wrc = write_file(o.accepted_file, r->accepted, r->accepted_len);
        if (wrc != 0) {
            fprintf(stderr, "loadgen: write %s failed: %s\n", o.accepted_file, strerror(-wrc));
            status = 1;
        }
    }
    lg_results_free(r);
    curl_global_cleanup();
    return status;
}
