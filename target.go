package loa

import (
	"slices"
	"strings"
)

// Targets name who a session or schedule is for: whole areas (with all
// their descendants) and single devices.
type Targets struct {
	Areas   []string `json:"areas,omitempty"`
	Devices []string `json:"devices,omitempty"`
}

// Empty reports whether no target is named.
func (t Targets) Empty() bool { return len(t.Areas) == 0 && len(t.Devices) == 0 }

// String names the targets, for logs and the audit log.
func (t Targets) String() string {
	var parts []string
	if len(t.Areas) > 0 {
		parts = append(parts, "areas "+strings.Join(t.Areas, ","))
	}
	if len(t.Devices) > 0 {
		parts = append(parts, "devices "+strings.Join(t.Devices, ","))
	}
	return strings.Join(parts, "; ")
}

// Resolve expands the targets into the receivers they name: every device
// in a named area or below it in tree, and every named device; sorted,
// without duplicates. A name that is not in tree or devices is ENOTFOUND,
// naming its field.
func (t Targets) Resolve(tree AreaTree, devices []*Device) ([]string, error) {
	for _, a := range t.Areas {
		if tree[a] == nil {
			return nil, Errorf(ENOTFOUND, "targets.areas: no area %q", a)
		}
	}
	known := make(map[string]bool, len(devices))
	var ids []string
	for _, d := range devices {
		known[d.ID] = true
		for _, a := range t.Areas {
			if tree.Within(d.AreaID, a) {
				ids = append(ids, d.ID)
				break
			}
		}
	}
	for _, id := range t.Devices {
		if !known[id] {
			return nil, Errorf(ENOTFOUND, "targets.devices: no device %q", id)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
