package sharedmain

import (
	"errors"
	"io/fs"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	cases := []struct {
		name   string
		files  map[string]string
		want   int64
		wantOK bool
	}{
		{"cgroup v2 limit", map[string]string{cgroupV2MemoryMax: "536870912\n"}, 536870912, true},
		{"cgroup v2 no limit", map[string]string{cgroupV2MemoryMax: "max\n", cgroupV1MemoryMax: "1073741824"}, 0, false},
		{"cgroup v1 limit", map[string]string{cgroupV1MemoryMax: "1073741824\n"}, 1073741824, true},
		{"cgroup v1 unlimited", map[string]string{cgroupV1MemoryMax: "9223372036854771712\n"}, 0, false},
		{"not in a cgroup", nil, 0, false},
		{"malformed", map[string]string{cgroupV2MemoryMax: "lots"}, 0, false},
		{"zero", map[string]string{cgroupV2MemoryMax: "0"}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			read := func(path string) ([]byte, error) {
				if v, ok := tc.files[path]; ok {
					return []byte(v), nil
				}
				return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
			}
			got, ok := cgroupMemoryLimit(read)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("cgroupMemoryLimit = %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
	if _, ok := cgroupMemoryLimit(func(string) ([]byte, error) { return nil, errors.New("permission denied") }); ok {
		t.Error("an unreadable file gave a limit")
	}
}
