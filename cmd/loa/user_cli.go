package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/loa-broadcast/loa/api"
)

// runUser is "loa user add|passwd": a client of the users API (the
// running controller holds the database's lock). The password is read
// from a file or stdin, never from the command line, where ps shows it.
func runUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: loa user add|passwd -token-file F -username U -password-file P|- [-role R -area A -name N]"
	if len(args) == 0 || (args[0] != "add" && args[0] != "passwd") {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("loa user "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the controller's API URL")
	tokenFile := fs.String("token-file", "", "file holding an admin token, e.g. <data>/admin-token (or LOA_TOKEN)")
	username := fs.String("username", "", "the user")
	pwFile := fs.String("password-file", "-", `file holding the password; "-" reads it from stdin`)
	role := fs.String("role", "operator", "add: admin, province, operator, technician or approver")
	area := fs.String("area", "", "add: the area id the user is limited to; empty: the whole station")
	name := fs.String("name", "", "add: display name (default the username)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *username == "" || fs.NArg() > 0 {
		return errors.New(usage)
	}
	token := os.Getenv("LOA_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return errors.New("-token-file (or LOA_TOKEN) is required")
	}
	var pw []byte
	var err error
	if *pwFile == "-" {
		pw, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
	} else {
		pw, err = os.ReadFile(*pwFile)
	}
	if err != nil {
		return err
	}
	password := strings.TrimRight(string(pw), "\r\n")
	c := api.NewClient(strings.TrimRight(*base, "/"), token)
	if args[0] == "add" {
		body := map[string]string{"username": *username, "name": *name, "password": password, "role": *role, "area_id": *area}
		if err := c.JSON(ctx, "POST", "/api/v1/users", body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (%s)\n", *username, *role)
		return nil
	}
	if err := c.JSON(ctx, "POST", "/api/v1/users/"+url.PathEscape(*username)+"/password", map[string]string{"password": password}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "set the password of %s; its sessions ended\n", *username)
	return nil
}
