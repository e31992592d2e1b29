package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/loa-broadcast/loa/daemon"
)

// runBackup is "loa backup": a client of GET /api/v1/backup, since the
// running controller holds the database's lock.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the controller's API URL")
	tokenFile := fs.String("token-file", "", "file holding a station-wide admin token, e.g. <data>/admin-token (or LOA_TOKEN)")
	ca := fs.String("ca", "", "CA certificate to verify an https URL with, e.g. <data>/tls/ca.crt (default: the system's)")
	out := fs.String("o", "", "archive to write (written whole or not at all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("usage: loa backup -url URL -token-file FILE -o FILE")
	}
	token := os.Getenv("LOA_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		token = string(b)
	}
	if token == "" {
		return errors.New("-token-file (or LOA_TOKEN) is required")
	}
	man, err := daemon.FetchBackup(ctx, *url, token, *ca, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d files, checked against its manifest\n", *out, len(man.Files))
	return nil
}

// runRestore is "loa restore -data DIR FILE".
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "the NEW data directory to restore into (absent or empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		return errors.New("usage: loa restore -data DIR FILE")
	}
	summary, err := daemon.Restore(ctx, fs.Arg(0), *dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, summary)
	fmt.Fprintf(stdout, "start it with: loa serve -data %s\n", *dir)
	if _, err := os.Stat(*dir + "/firmware.pub"); err == nil {
		fmt.Fprintf(stdout, "(add -firmware-key %s/firmware.pub for firmware uploads)\n", *dir)
	}
	return nil
}
