package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/wire"
)

func alarmFields(a apitype.Alarm) []field {
	return []field{
		{"uuid", a.UUID}, {"alarm_id", a.AlarmID}, {"reason_text", a.ReasonText},
		{"entity_type_id", a.EntityTypeID}, {"entity_instance_id", a.EntityInstanceID},
		{"severity", a.Severity}, {"alarm_type", a.AlarmType}, {"probable_cause", a.ProbableCause},
		{"proposed_repair_action", a.ProposedRepairAction},
		{"service_affecting", strconv.FormatBool(a.ServiceAffecting)},
		{"timestamp", timeText(a.Timestamp)}, {"updated_at", timeText(a.UpdatedAt)},
	}
}

var alarmListColumns = []string{"uuid", "alarm_id", "reason_text", "entity_instance_id", "severity", "timestamp"}

func (a *app) faultCommands() []*cobra.Command {
	var (
		f        client.AlarmFilter
		host     string
		pageSize int
	)
	list := &cobra.Command{
		Use:   "alarm-list",
		Short: "List the active alarms, in the order they were raised",
		Long: `List the active alarms, in the order they were raised (oldest first).

Every alarm is listed, fetched page by page. --limit shows one page of at
most that many alarms instead, --marker the page after a marker, and the
marker of the page after that goes to standard error.`,
		Example: `  hbctl alarm-list
  hbctl alarm-list --host edge-01 --severity critical
  hbctl alarm-list --limit 100 --marker 4711`,
		Args: a.args(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if f.Limit < 0 || pageSize < 0 {
				return &usageError{fmt.Errorf("--limit %d, --page-size %d: give a number of alarms from 1 to 1000", f.Limit, pageSize)}
			}
			if host != "" {
				f.Entity = "host=" + host
			}
			var (
				alarms []apitype.Alarm
				next   string
			)
			if f.Limit > 0 || f.Marker != "" {
				page, err := c.AlarmPage(ctx, f)
				if err != nil {
					return err
				}
				alarms, next = page.Alarms, page.Next
			} else {
				all := f
				all.Limit = pageSize
				var err error
				if alarms, err = c.ListAlarmsFiltered(ctx, all); err != nil {
					return err
				}
			}
			if alarms == nil {
				alarms = []apitype.Alarm{}
			}
			v := view{raw: alarms, list: true, names: alarmListColumns}
			for _, al := range alarms {
				v.rows = append(v.rows, alarmFields(al))
			}
			if err := a.show(v); err != nil {
				return err
			}
			a.nextPage("alarms", next)
			return nil
		}),
	}
	fl := list.Flags()
	fl.StringVar(&host, "host", "", "only alarms of this host")
	fl.StringVar(&f.Entity, "entity", "", "only alarms of this entity, like host=edge-01")
	fl.StringVar(&f.Severity, "severity", "", "only alarms of this severity: warning, minor, major, critical")
	fl.IntVar(&f.Limit, "limit", 0, "show one page of at most this many alarms, 1 to 1000 (default 0: every alarm)")
	fl.StringVar(&f.Marker, "marker", "", "show the page after this marker, which the previous page printed")
	fl.IntVar(&pageSize, "page-size", 0, "alarms fetched per request when listing every alarm (default: the controller's)")
	show := &cobra.Command{
		Use:   "alarm-show UUID",
		Short: "Show an active alarm",
		Args:  a.args("UUID"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			al, err := c.GetAlarm(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(view{raw: al, rows: [][]field{alarmFields(al)}})
		}),
	}
	return []*cobra.Command{list, show}
}

// inventoryCommand is one of the StarlingX-like hardware reads of a host.
func (a *app) inventoryCommand(use, short string, render func(inv wire.Inventory) view) *cobra.Command {
	return &cobra.Command{
		Use:               use + " HOST",
		Short:             short,
		Args:              a.args("HOST"),
		ValidArgsFunction: a.completeHosts,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			hi, err := c.HostInventory(ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(render(hi.Inventory))
		}),
	}
}

func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *app) hardwareCommands() []*cobra.Command {
	cpu := a.inventoryCommand("host-cpu-list", "List a host's processors", func(inv wire.Inventory) view {
		names := []string{"socket", "model", "cores", "threads", "mhz"}
		v := view{raw: inv.CPUs, list: true, names: names}
		for _, c := range inv.CPUs {
			v.rows = append(v.rows, []field{{"socket", strconv.Itoa(c.Socket)}, {"model", c.Model},
				{"cores", strconv.Itoa(c.Cores)}, {"threads", strconv.Itoa(c.Threads)}, {"mhz", strconv.Itoa(c.MHz)}})
		}
		return v
	})
	mem := a.inventoryCommand("host-memory-show", "Show a host's memory", func(inv wire.Inventory) view {
		m := inv.Memory
		return view{raw: m, rows: [][]field{{{"total", bytesText(m.TotalBytes)}, {"available", bytesText(m.AvailableBytes)},
			{"hugepages_2mib", strconv.FormatUint(m.HugePages2MiB, 10)}}}}
	})
	disk := a.inventoryCommand("host-disk-list", "List a host's disks", func(inv wire.Inventory) view {
		names := []string{"name", "size", "type", "rotational", "in_use", "model", "serial"}
		v := view{raw: inv.Disks, list: true, names: names}
		for _, d := range inv.Disks {
			v.rows = append(v.rows, []field{{"name", d.Name}, {"size", bytesText(d.SizeBytes)}, {"type", d.Type},
				{"rotational", strconv.FormatBool(d.Rotational)}, {"in_use", strconv.FormatBool(d.InUse)},
				{"model", d.Model}, {"serial", d.Serial}})
		}
		return v
	})
	ifs := a.inventoryCommand("host-if-list", "List a host's network interfaces", func(inv wire.Inventory) view {
		names := []string{"name", "mac", "state", "speed_mbps", "mtu", "addresses", "virtual"}
		v := view{raw: inv.Interfaces, list: true, names: names}
		for _, i := range inv.Interfaces {
			v.rows = append(v.rows, []field{{"name", i.Name}, {"mac", i.MAC}, {"state", i.State},
				{"speed_mbps", strconv.Itoa(i.SpeedMbps)}, {"mtu", strconv.Itoa(i.MTU)},
				{"addresses", strings.Join(i.Addresses, ",")}, {"virtual", strconv.FormatBool(i.Virtual)}})
		}
		return v
	})
	return []*cobra.Command{cpu, mem, disk, ifs}
}
