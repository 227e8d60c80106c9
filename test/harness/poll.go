package harness

import (
	"fmt"
	"time"
)

// Poll calls cond every interval until it reports true or timeout passes;
// the error carries cond's last explanation.
func Poll(timeout, interval time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v; last: %s", timeout, why)
		}
		time.Sleep(interval)
	}
}

// Await is Poll that gives up as soon as the process exits: it returns nil
// only if ready reported true while the process still ran.
func (p *Process) Await(timeout, interval time.Duration, ready func() (bool, string)) error {
	err := Poll(timeout, interval, func() (bool, string) {
		if p.Exited() {
			return true, ""
		}
		return ready()
	})
	if p.Exited() {
		return fmt.Errorf("%s exited with status %d", p.Name, p.Code())
	}
	return err
}
