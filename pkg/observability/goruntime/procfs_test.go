package goruntime

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

// statLine is a /proc/<pid>/stat line as the kernel writes it (52 fields)
// with the given command and values.
func statLine(comm string, utime, stime, starttime, vsize uint64, rss int64) string {
	return fmt.Sprintf("4242 (%s) S 1 4242 4242 0 -1 4194560 1204 0 0 0 %d %d 0 0 20 0 9 0 %d %d %d "+
		"18446744073709551615 4194304 9010237 140725470201952 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 "+
		"11935784 12296704 28536832 140725470207829 140725470207855 140725470207855 140725470207973 0\n",
		comm, utime, stime, starttime, vsize, rss)
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{name: "kernel line", in: statLine("queue-proxy", 250, 125, 123456, 1048576000, 2560),
			want: procStat{utime: 250, stime: 125, starttime: 123456, vsize: 1048576000, rss: 2560}},
		{name: "command with spaces and parentheses", in: statLine("a) (b c) S 9 9", 1, 2, 3, 4, 5),
			want: procStat{utime: 1, stime: 2, starttime: 3, vsize: 4, rss: 5}},
		{name: "negative rss", in: statLine("x", 1, 2, 3, 4, -1), want: procStat{utime: 1, stime: 2, starttime: 3, vsize: 4, rss: -1}},
		{name: "largest values", in: statLine("x", math.MaxUint64, 0, math.MaxUint64, math.MaxUint64, math.MaxInt64),
			want: procStat{utime: math.MaxUint64, starttime: math.MaxUint64, vsize: math.MaxUint64, rss: math.MaxInt64}},
		{name: "just enough fields", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 9 10 11",
			want: procStat{utime: 7, stime: 8, starttime: 9, vsize: 10, rss: 11}},
		{name: "one field short", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 9 10", wantErr: true},
		{name: "no command", in: "1 x S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 9 10 11", wantErr: true},
		{name: "parentheses reversed", in: "1 )x( S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 9 10 11", wantErr: true},
		{name: "utime not a number", in: strings.Replace(statLine("x", 1, 2, 3, 4, 5), " 1 2 0 0 20", " a 2 0 0 20", 1), wantErr: true},
		{name: "utime overflows", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551616 8 0 0 20 0 1 0 9 10 11", wantErr: true},
		{name: "vsize negative", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 9 -10 11", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStat = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseBootTime(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "proc stat", in: "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 5 6\nctxt 7\nbtime 1700000000\nprocesses 8\n", want: 1700000000},
		{name: "last line without newline", in: "cpu 1\nbtime 42", want: 42},
		{name: "missing", in: "cpu 1\nbtimes 42\n", wantErr: true},
		{name: "no value", in: "btime\n", wantErr: true},
		{name: "two values", in: "btime 1 2\n", wantErr: true},
		{name: "not a number", in: "btime -1\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBootTime([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseBootTime = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

const limitsHeader = "Limit                     Soft Limit           Hard Limit           Units     \n"

// limitsFile is a /proc/<pid>/limits with the two limits we read.
func limitsFile(openFiles, addressSpace string) string {
	return limitsHeader +
		"Max cpu time              unlimited            unlimited            seconds   \n" +
		fmt.Sprintf("Max open files            %-20s 1048576              files     \n", openFiles) +
		"Max locked memory         8388608              8388608              bytes     \n" +
		fmt.Sprintf("Max address space         %-20s unlimited            bytes     \n", addressSpace) +
		"Max nice priority         0                    0                    \n"
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		files, space uint64
		wantErr      bool
	}{
		{name: "numbers", in: limitsFile("20000", "1073741824"), files: 20000, space: 1 << 30},
		{name: "unlimited", in: limitsFile("unlimited", "unlimited"), files: math.MaxUint64, space: math.MaxUint64},
		{name: "missing lines read 0", in: limitsHeader + "Max cpu time              unlimited            unlimited            seconds   \n"},
		{name: "no hard limit", in: limitsHeader + "Max open files            1024\n", wantErr: true},
		{name: "not a number", in: limitsFile("lots", "1"), wantErr: true},
		{name: "overflow", in: limitsFile("18446744073709551616", "1"), wantErr: true},
		{name: "empty", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, space, err := parseLimits([]byte(tc.in))
			if (err != nil) != tc.wantErr || files != tc.files || space != tc.space {
				t.Errorf("parseLimits = %d, %d, %v; want %d, %d, error %v", files, space, err, tc.files, tc.space, tc.wantErr)
			}
		})
	}
}

// netstatFile is a /proc/<pid>/net/netstat with the given IpExt section.
func netstatFile(ipExt string) string {
	return "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed\nTcpExt: 0 0 0\n" + ipExt +
		"MPTcpExt: MPCapableSYNRX MPCapableSYNTX\nMPTcpExt: 0 0\n"
}

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		name            string
		in              string
		wantIn, wantOut float64
		wantErr         bool
	}{
		{name: "kernel file", in: netstatFile("IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets\nIpExt: 0 0 0 0 0 0 3346841 1123456 0\n"),
			wantIn: 3346841, wantOut: 1123456},
		{name: "no IpExt section reads 0", in: netstatFile("")},
		{name: "no octets reads 0", in: netstatFile("IpExt: InNoRoutes\nIpExt: 5\n")},
		{name: "more names than values", in: netstatFile("IpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 1\n"), wantErr: true},
		{name: "more values than names", in: netstatFile("IpExt: InOctets\nIpExt: 1 2\n"), wantErr: true},
		{name: "names without values", in: "IpExt: InOctets OutOctets\n", wantErr: true},
		{name: "value not a number", in: netstatFile("IpExt: InOctets OutOctets\nIpExt: x 1\n"), wantErr: true},
		{name: "last line without newline", in: "IpExt: InOctets OutOctets\nIpExt: 7 8", wantIn: 7, wantOut: 8},
		{name: "empty", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, out, err := parseNetstat([]byte(tc.in))
			if (err != nil) != tc.wantErr || in != tc.wantIn || out != tc.wantOut {
				t.Errorf("parseNetstat = %v, %v, %v; want %v, %v, error %v", in, out, err, tc.wantIn, tc.wantOut, tc.wantErr)
			}
		})
	}
}

// TestParsersAgainstProcfs reads this process's real /proc files with our
// decoders and with procfs, the library the Prometheus client uses.
func TestParsersAgainstProcfs(t *testing.T) {
	self, err := procfs.Self()
	if err != nil {
		t.Skipf("no procfs here: %v", err)
	}
	r := newProcReader("/proc")
	read := func(name string) []byte {
		data, err := r.readFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), data...)
	}

	want, err := self.Stat()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseStat(read("/proc/self/stat"))
	if err != nil {
		t.Fatal(err)
	}
	// CPU time and RSS move between the two reads; the rest does not.
	if got.starttime != want.Starttime || got.vsize != uint64(want.VSize) || got.utime < uint64(want.UTime) ||
		got.stime < uint64(want.STime) || math.Abs(float64(got.rss-int64(want.RSS))) > 256 {
		t.Errorf("parseStat = %+v, procfs %+v", got, want)
	}

	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	kstat, err := fs.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if btime, err := parseBootTime(read("/proc/stat")); err != nil || btime != kstat.BootTime {
		t.Errorf("parseBootTime = %d, %v; procfs %d", btime, err, kstat.BootTime)
	}

	limits, err := self.Limits()
	if err != nil {
		t.Fatal(err)
	}
	if files, space, err := parseLimits(read("/proc/self/limits")); err != nil || files != limits.OpenFiles || space != limits.AddressSpace {
		t.Errorf("parseLimits = %d, %d, %v; procfs %d, %d", files, space, err, limits.OpenFiles, limits.AddressSpace)
	}

	netstat, err := self.Netstat()
	if err != nil {
		t.Skipf("procfs cannot read net/netstat here: %v", err)
	}
	in, out, err := parseNetstat(read("/proc/self/net/netstat"))
	if err != nil || netstat.InOctets == nil || netstat.OutOctets == nil || in < *netstat.InOctets || out < *netstat.OutOctets {
		t.Errorf("parseNetstat = %v, %v, %v; procfs %v, %v", in, out, err, netstat.InOctets, netstat.OutOctets)
	}

	fds, err := self.FileDescriptorsLen()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := countFDs("/proc/self/fd", true); err != nil || math.Abs(float64(n-fds)) > 1 {
		t.Errorf("countFDs = %d, %v; procfs %d", n, err, fds)
	}
	if n, err := countFDs("/proc/self/fd", false); err != nil || math.Abs(float64(n-fds)) > 1 {
		t.Errorf("countFDs by listing = %d, %v; procfs %d", n, err, fds)
	}
}

// The fuzz targets check two things: any input is rejected or decoded
// without panicking, and a file laid out as the kernel lays it out is
// decoded to the values it was made from.

func FuzzParseStat(f *testing.F) {
	f.Add("queue-proxy", uint64(250), uint64(125), uint64(123456), uint64(1048576000), int64(2560), []byte(statLine("x", 1, 2, 3, 4, 5)))
	f.Add("a) (b", uint64(0), uint64(math.MaxUint64), uint64(1), uint64(0), int64(-1), []byte("1 (x) S"))
	f.Add("", uint64(1), uint64(1), uint64(1), uint64(1), int64(1), []byte(")("))
	f.Fuzz(func(t *testing.T, comm string, utime, stime, starttime, vsize uint64, rss int64, raw []byte) {
		parseStat(raw)
		if strings.ContainsAny(comm, "\x00") {
			return // the kernel's comm is a C string
		}
		want := procStat{utime: utime, stime: stime, starttime: starttime, vsize: vsize, rss: rss}
		if got, err := parseStat([]byte(statLine(comm, utime, stime, starttime, vsize, rss))); err != nil || got != want {
			t.Errorf("comm %q: parseStat = %+v, %v; want %+v", comm, got, err, want)
		}
	})
}

func FuzzParseBootTime(f *testing.F) {
	f.Add(uint64(1700000000), []byte("cpu 1 2\nbtime 1700000000\n"))
	f.Add(uint64(0), []byte("btime"))
	f.Fuzz(func(t *testing.T, btime uint64, raw []byte) {
		parseBootTime(raw)
		in := fmt.Sprintf("cpu  1 2 3\nintr 1 2 3\nctxt 4\nbtime %d\nprocesses 5\n", btime)
		if got, err := parseBootTime([]byte(in)); err != nil || got != btime {
			t.Errorf("parseBootTime = %d, %v; want %d", got, err, btime)
		}
	})
}

func FuzzParseLimits(f *testing.F) {
	f.Add(uint64(1024), uint64(math.MaxUint64), []byte(limitsFile("1024", "unlimited")))
	f.Add(uint64(0), uint64(0), []byte("Max open files x"))
	f.Fuzz(func(t *testing.T, files, space uint64, raw []byte) {
		parseLimits(raw)
		format := func(v uint64) string {
			if v == unlimited {
				return "unlimited"
			}
			return fmt.Sprint(v)
		}
		gotFiles, gotSpace, err := parseLimits([]byte(limitsFile(format(files), format(space))))
		if err != nil || gotFiles != files || gotSpace != space {
			t.Errorf("parseLimits = %d, %d, %v; want %d, %d", gotFiles, gotSpace, err, files, space)
		}
	})
}

func FuzzParseNetstat(f *testing.F) {
	f.Add(uint64(3346841), uint64(1123456), []byte(netstatFile("IpExt: InOctets OutOctets\nIpExt: 1 2\n")))
	f.Add(uint64(0), uint64(math.MaxUint64), []byte("IpExt: InOctets\n"))
	f.Fuzz(func(t *testing.T, in, out uint64, raw []byte) {
		parseNetstat(raw)
		file := netstatFile(fmt.Sprintf("IpExt: InNoRoutes InOctets OutOctets InMcastOctets\nIpExt: 0 %d %d 0\n", in, out))
		gotIn, gotOut, err := parseNetstat([]byte(file))
		if err != nil || gotIn != float64(in) || gotOut != float64(out) {
			t.Errorf("parseNetstat = %v, %v, %v; want %d, %d", gotIn, gotOut, err, in, out)
		}
	})
}

func TestReadFileGrows(t *testing.T) {
	path := t.TempDir() + "/big"
	content := strings.Repeat("0123456789", 2000) // larger than the initial buffer
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newProcReader(t.TempDir())
	for range 2 { // the second read reuses the grown buffer
		got, err := r.readFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("readFile: %d bytes, %v; want %d", len(got), err, len(content))
		}
	}
	if _, err := r.readFile(path + ".missing"); err == nil {
		t.Error("readFile of a missing file succeeded")
	}
}
