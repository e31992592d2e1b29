package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
)

// serveNode runs a cluster node: the station opens where it leads.
func serveNode(ctx context.Context, cfg daemon.Config, logger *slog.Logger, stderr io.Writer) error {
	n, err := daemon.OpenNode(ctx, cfg, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Cluster node %s: Raft on %s; the station opens here while this node leads (loa cluster status)\n",
		cfg.Cluster.NodeID, cfg.Cluster.RaftBind)
	<-ctx.Done()
	logger.Info("shutting down")
	return n.Close()
}

// runCluster is "loa cluster status|add|remove|transfer-leadership": a
// client of /api/v1/cluster on any node (a follower answers status as it
// sees the group and sends changes to the leader).
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: loa cluster status|add|remove|transfer-leadership -url URL -token-file F [-id N -raft host:port | -to N]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("loa cluster "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "any node's API URL")
	tokenFile := fs.String("token-file", "", "file holding an admin token, e.g. <data>/admin-token (or LOA_TOKEN)")
	id := fs.String("id", "", "add, remove: the node's id")
	raft := fs.String("raft", "", "add: host:port of the node's Raft transport")
	to := fs.String("to", "", "transfer-leadership: the node to lead (default: any up-to-date controller node)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
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
	c := api.NewClient(strings.TrimRight(*base, "/"), token)
	switch verb {
	case "status":
		var st api.ClusterStatus
		if err := c.JSON(ctx, "GET", "/api/v1/cluster", nil, &st); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %s (%s): leader %s, term %d, commit %d, applied %d", st.Node, st.State, st.Leader, st.Term, st.CommitIndex, st.AppliedIndex)
		if st.Fence != nil {
			fmt.Fprintf(stdout, ", fence %d.%d", st.Fence.Gen, st.Fence.Term)
		}
		fmt.Fprintln(stdout)
		for _, s := range st.Servers {
			role := "voter"
			if s.Witness {
				role = "witness"
			} else if !s.Voter {
				role = "non-voter"
			}
			mark := " "
			if s.ID == st.Leader {
				mark = "*"
			}
			fmt.Fprintf(stdout, "%s %-12s %-8s raft %-21s api %s\n", mark, s.ID, role, s.Raft, s.API)
		}
		return nil
	case "add":
		if *id == "" || *raft == "" {
			return errors.New("loa cluster add: -id and -raft are required")
		}
		return c.JSON(ctx, "POST", "/api/v1/cluster/servers", map[string]string{"id": *id, "raft": *raft}, nil)
	case "remove":
		if *id == "" {
			return errors.New("loa cluster remove: -id is required")
		}
		return c.JSON(ctx, "DELETE", "/api/v1/cluster/servers/"+*id, nil, nil)
	case "transfer-leadership":
		return c.JSON(ctx, "POST", "/api/v1/cluster/transfer", map[string]string{"to": *to}, nil)
	case "json": // status as JSON, for scripts
		var st json.RawMessage
		if err := c.JSON(ctx, "GET", "/api/v1/cluster", nil, &st); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, string(st))
		return err
	}
	return errors.New(usage)
}
