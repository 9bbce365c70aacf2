package check

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mirrors of the upstream API types of the kinds whose Go modules the module proxy here
// does not serve (github.com/k8snetworkplumbingwg/sriov-network-operator,
// github.com/k8snetworkplumbingwg/network-attachment-definition-client) or that have none
// (Strimzi is Java: io.strimzi:api 1.2.0). Field names and JSON tags follow upstream
// (sriov-network-operator api/v1/sriovnetwork*_types.go, the NAD client's
// pkg/apis/k8s.cni.cncf.io/v1/types.go, the userspace CNI's pkg/types, the getters of the
// Strimzi 1.2.0 api jar's model classes); they list every spec field upstream has that the
// chart could set, so a field upstream lacks is an unknown-field error here too. Only the
// fields the chart uses are complete down to the leaves.

// SriovNetworkNodePolicy is sriovnetwork.openshift.io/v1.
type SriovNetworkNodePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              SriovNetworkNodePolicySpec `json:"spec"`
}

type SriovNetworkNodePolicySpec struct {
	ResourceName      string                  `json:"resourceName"`
	NodeSelector      map[string]string       `json:"nodeSelector"`
	Priority          int                     `json:"priority,omitempty"`
	Mtu               int                     `json:"mtu,omitempty"`
	NeedVhostNet      bool                    `json:"needVhostNet,omitempty"`
	NumVfs            int                     `json:"numVfs"`
	NicSelector       SriovNetworkNicSelector `json:"nicSelector"`
	DeviceType        string                  `json:"deviceType,omitempty"`
	IsRdma            bool                    `json:"isRdma,omitempty"`
	LinkType          string                  `json:"linkType,omitempty"`
	ESwitchMode       string                  `json:"eSwitchMode,omitempty"`
	VdpaType          string                  `json:"vdpaType,omitempty"`
	ExcludeTopology   bool                    `json:"excludeTopology,omitempty"`
	ExternallyManaged bool                    `json:"externallyManaged,omitempty"`
	Bridge            json.RawMessage         `json:"bridge,omitempty"`
}

type SriovNetworkNicSelector struct {
	Vendor      string   `json:"vendor,omitempty"`
	DeviceID    string   `json:"deviceID,omitempty"`
	RootDevices []string `json:"rootDevices,omitempty"`
	PfNames     []string `json:"pfNames,omitempty"`
	NetFilter   string   `json:"netFilter,omitempty"`
}

// Validate holds the spec to the CRD's OpenAPI constraints (kubebuilder markers upstream).
func (p *SriovNetworkNodePolicy) Validate() error {
	s := p.Spec
	switch {
	case s.ResourceName == "":
		return fmt.Errorf("spec.resourceName is required")
	case s.Priority < 0 || s.Priority > 99:
		return fmt.Errorf("spec.priority %d not in 0..99", s.Priority)
	case s.Mtu < 0:
		return fmt.Errorf("spec.mtu %d below 1", s.Mtu)
	case s.NumVfs < 0 || s.NumVfs > 127:
		return fmt.Errorf("spec.numVfs %d not in 0..127", s.NumVfs)
	case s.DeviceType != "" && s.DeviceType != "netdevice" && s.DeviceType != "vfio-pci":
		return fmt.Errorf("spec.deviceType %q: netdevice or vfio-pci", s.DeviceType)
	}
	return nil
}

// SriovNetwork is sriovnetwork.openshift.io/v1.
type SriovNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              SriovNetworkSpec `json:"spec"`
}

type SriovNetworkSpec struct {
	NetworkNamespace  string `json:"networkNamespace,omitempty"`
	ResourceName      string `json:"resourceName"`
	IPAM              string `json:"ipam,omitempty"`
	Vlan              int    `json:"vlan,omitempty"`
	VlanQoS           int    `json:"vlanQoS,omitempty"`
	VlanProto         string `json:"vlanProto,omitempty"`
	SpoofChk          string `json:"spoofChk,omitempty"`
	Trust             string `json:"trust,omitempty"`
	LinkState         string `json:"linkState,omitempty"`
	MinTxRate         *int   `json:"minTxRate,omitempty"`
	MaxTxRate         *int   `json:"maxTxRate,omitempty"`
	MetaPluginsConfig string `json:"metaPlugins,omitempty"`
	Capabilities      string `json:"capabilities,omitempty"`
	LogLevel          string `json:"logLevel,omitempty"`
	LogFile           string `json:"logFile,omitempty"`
}

func (n *SriovNetwork) Validate() error {
	s := n.Spec
	switch {
	case s.ResourceName == "":
		return fmt.Errorf("spec.resourceName is required")
	case s.Vlan < 0 || s.Vlan > 4096:
		return fmt.Errorf("spec.vlan %d not in 0..4096", s.Vlan)
	case s.SpoofChk != "" && s.SpoofChk != "on" && s.SpoofChk != "off":
		return fmt.Errorf("spec.spoofChk %q: on or off", s.SpoofChk)
	case s.Trust != "" && s.Trust != "on" && s.Trust != "off":
		return fmt.Errorf("spec.trust %q: on or off", s.Trust)
	case s.LinkState != "" && s.LinkState != "auto" && s.LinkState != "enable" && s.LinkState != "disable":
		return fmt.Errorf("spec.linkState %q: auto, enable or disable", s.LinkState)
	}
	if s.IPAM != "" && !json.Valid([]byte(s.IPAM)) {
		return fmt.Errorf("spec.ipam is not JSON: %q", s.IPAM)
	}
	return nil
}

// NetworkAttachmentDefinition is k8s.cni.cncf.io/v1 (the Network Plumbing WG spec).
type NetworkAttachmentDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Config string `json:"config"`
	} `json:"spec"`
}

// UserspaceConf is the userspace CNI's network configuration (pkg/types.NetConf).
type UserspaceConf struct {
	CNIVersion   string          `json:"cniVersion"`
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	KubeConfig   string          `json:"kubeconfig,omitempty"`
	LogFile      string          `json:"logFile,omitempty"`
	LogLevel     string          `json:"logLevel,omitempty"`
	SharedDir    string          `json:"sharedDir,omitempty"`
	Host         UserspaceSide   `json:"host"`
	Container    UserspaceSide   `json:"container"`
	IPAM         json.RawMessage `json:"ipam,omitempty"`
	DNS          json.RawMessage `json:"dns,omitempty"`
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
}

type UserspaceSide struct {
	Engine  string `json:"engine"`
	IfType  string `json:"iftype"`
	NetType string `json:"netType,omitempty"`
	Vhost   *struct {
		Mode   string `json:"mode"`
		Group  string `json:"group,omitempty"`
		Socket string `json:"socketfile,omitempty"`
	} `json:"vhost,omitempty"`
	Bridge *struct {
		BridgeName string `json:"bridgeName"`
		VlanID     int    `json:"vlanId,omitempty"`
	} `json:"bridge,omitempty"`
	Memif json.RawMessage `json:"memif,omitempty"`
}

// checkConfig decodes the CNI configuration strictly and holds it to what the userspace CNI
// accepts: engines "ovs-dpdk" or "vpp" only, vhost-user on both sides in opposite modes.
func (n *NetworkAttachmentDefinition) checkConfig() error {
	var c UserspaceConf
	if err := strictJSON([]byte(n.Spec.Config), &c); err != nil {
		return fmt.Errorf("spec.config: %w", err)
	}
	if c.Type != "userspace" {
		return fmt.Errorf("spec.config: type %q, want userspace", c.Type)
	}
	for side, s := range map[string]UserspaceSide{"host": c.Host, "container": c.Container} {
		if s.Engine != "ovs-dpdk" && s.Engine != "vpp" {
			return fmt.Errorf("spec.config: %s.engine %q: the userspace CNI accepts only ovs-dpdk or vpp", side, s.Engine)
		}
		if s.IfType != "vhostuser" || s.Vhost == nil {
			return fmt.Errorf("spec.config: %s.iftype %q: want vhostuser with a vhost block", side, s.IfType)
		}
	}
	if c.Host.Vhost.Mode == c.Container.Vhost.Mode {
		return fmt.Errorf("spec.config: host and container vhost modes are both %q: one side must be server", c.Host.Vhost.Mode)
	}
	if c.Host.NetType == "bridge" && (c.Host.Bridge == nil || c.Host.Bridge.BridgeName == "") {
		return fmt.Errorf("spec.config: host.netType bridge without bridge.bridgeName")
	}
	if c.Name != n.Name {
		return fmt.Errorf("spec.config: name %q differs from the object's %q", c.Name, n.Name)
	}
	return nil
}

// Strimzi kafka.strimzi.io/v1 (Strimzi 1.x: KRaft and node pools only).

type StrimziKafka struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Kafka struct {
			Version         string            `json:"version,omitempty"`
			MetadataVersion string            `json:"metadataVersion,omitempty"`
			Listeners       []StrimziListener `json:"listeners"`
			Config          map[string]any    `json:"config,omitempty"`
			Authorization   json.RawMessage   `json:"authorization,omitempty"`
			Rack            json.RawMessage   `json:"rack,omitempty"`
			Image           string            `json:"image,omitempty"`
			JvmOptions      json.RawMessage   `json:"jvmOptions,omitempty"`
			JmxOptions      json.RawMessage   `json:"jmxOptions,omitempty"`
			LivenessProbe   json.RawMessage   `json:"livenessProbe,omitempty"`
			ReadinessProbe  json.RawMessage   `json:"readinessProbe,omitempty"`
			Logging         json.RawMessage   `json:"logging,omitempty"`
			MetricsConfig   json.RawMessage   `json:"metricsConfig,omitempty"`
			Template        json.RawMessage   `json:"template,omitempty"`
			TieredStorage   json.RawMessage   `json:"tieredStorage,omitempty"`
			Quotas          json.RawMessage   `json:"quotas,omitempty"`
		} `json:"kafka"`
		EntityOperator *struct {
			TopicOperator *StrimziOperatorSpec   `json:"topicOperator,omitempty"`
			UserOperator  *StrimziOperatorSpec   `json:"userOperator,omitempty"`
			Template      *StrimziEntityTemplate `json:"template,omitempty"`
		} `json:"entityOperator,omitempty"`
		ClusterCa              json.RawMessage `json:"clusterCa,omitempty"`
		ClientsCa              json.RawMessage `json:"clientsCa,omitempty"`
		CruiseControl          json.RawMessage `json:"cruiseControl,omitempty"`
		KafkaExporter          json.RawMessage `json:"kafkaExporter,omitempty"`
		MaintenanceTimeWindows []string        `json:"maintenanceTimeWindows,omitempty"`
	} `json:"spec"`
}

type StrimziListener struct {
	Name               string          `json:"name"`
	Port               int             `json:"port"`
	Type               string          `json:"type"`
	TLS                bool            `json:"tls"`
	Authentication     json.RawMessage `json:"authentication,omitempty"`
	Configuration      json.RawMessage `json:"configuration,omitempty"`
	NetworkPolicyPeers json.RawMessage `json:"networkPolicyPeers,omitempty"`
}

type StrimziOperatorSpec struct {
	WatchedNamespace         string                       `json:"watchedNamespace,omitempty"`
	Image                    string                       `json:"image,omitempty"`
	ReconciliationIntervalMs int64                        `json:"reconciliationIntervalMs,omitempty"`
	Resources                *corev1.ResourceRequirements `json:"resources,omitempty"`
	StartupProbe             json.RawMessage              `json:"startupProbe,omitempty"`
	LivenessProbe            json.RawMessage              `json:"livenessProbe,omitempty"`
	ReadinessProbe           json.RawMessage              `json:"readinessProbe,omitempty"`
	Logging                  json.RawMessage              `json:"logging,omitempty"`
	JvmOptions               json.RawMessage              `json:"jvmOptions,omitempty"`
}

type StrimziMetadataTemplate struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type StrimziPodTemplate struct {
	Metadata                      *StrimziMetadataTemplate `json:"metadata,omitempty"`
	SecurityContext               json.RawMessage          `json:"securityContext,omitempty"`
	ImagePullSecrets              json.RawMessage          `json:"imagePullSecrets,omitempty"`
	TerminationGracePeriodSeconds *int64                   `json:"terminationGracePeriodSeconds,omitempty"`
	Affinity                      json.RawMessage          `json:"affinity,omitempty"`
	Tolerations                   json.RawMessage          `json:"tolerations,omitempty"`
	TopologySpreadConstraints     json.RawMessage          `json:"topologySpreadConstraints,omitempty"`
	PriorityClassName             string                   `json:"priorityClassName,omitempty"`
	SchedulerName                 string                   `json:"schedulerName,omitempty"`
	HostAliases                   json.RawMessage          `json:"hostAliases,omitempty"`
	DNSPolicy                     string                   `json:"dnsPolicy,omitempty"`
	DNSConfig                     json.RawMessage          `json:"dnsConfig,omitempty"`
	EnableServiceLinks            *bool                    `json:"enableServiceLinks,omitempty"`
	TmpDirSizeLimit               string                   `json:"tmpDirSizeLimit,omitempty"`
	Volumes                       json.RawMessage          `json:"volumes,omitempty"`
	HostUsers                     *bool                    `json:"hostUsers,omitempty"`
}

type StrimziEntityTemplate struct {
	Deployment               json.RawMessage     `json:"deployment,omitempty"`
	Pod                      *StrimziPodTemplate `json:"pod,omitempty"`
	EntityOperatorRole       json.RawMessage     `json:"entityOperatorRole,omitempty"`
	TopicOperatorRoleBinding json.RawMessage     `json:"topicOperatorRoleBinding,omitempty"`
	UserOperatorRoleBinding  json.RawMessage     `json:"userOperatorRoleBinding,omitempty"`
	TopicOperatorContainer   json.RawMessage     `json:"topicOperatorContainer,omitempty"`
	UserOperatorContainer    json.RawMessage     `json:"userOperatorContainer,omitempty"`
	ServiceAccount           json.RawMessage     `json:"serviceAccount,omitempty"`
	PodDisruptionBudget      json.RawMessage     `json:"podDisruptionBudget,omitempty"`
}

type StrimziKafkaNodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas   int                          `json:"replicas"`
		Roles      []string                     `json:"roles"`
		Storage    StrimziStorage               `json:"storage"`
		Resources  *corev1.ResourceRequirements `json:"resources,omitempty"`
		JvmOptions json.RawMessage              `json:"jvmOptions,omitempty"`
		Template   *struct {
			PodSet                json.RawMessage     `json:"podSet,omitempty"`
			Pod                   *StrimziPodTemplate `json:"pod,omitempty"`
			PerPodService         json.RawMessage     `json:"perPodService,omitempty"`
			PerPodIngress         json.RawMessage     `json:"perPodIngress,omitempty"`
			PersistentVolumeClaim json.RawMessage     `json:"persistentVolumeClaim,omitempty"`
			PerPodRoute           json.RawMessage     `json:"perPodRoute,omitempty"`
			KafkaContainer        json.RawMessage     `json:"kafkaContainer,omitempty"`
			InitContainer         json.RawMessage     `json:"initContainer,omitempty"`
		} `json:"template,omitempty"`
	} `json:"spec"`
}

type StrimziStorage struct {
	Type    string `json:"type"`
	Volumes []struct {
		ID                    *int              `json:"id,omitempty"`
		Type                  string            `json:"type"`
		Size                  string            `json:"size,omitempty"`
		Class                 string            `json:"class,omitempty"`
		DeleteClaim           bool              `json:"deleteClaim,omitempty"`
		KraftMetadata         string            `json:"kraftMetadata,omitempty"`
		Selector              map[string]string `json:"selector,omitempty"`
		VolumeAttributesClass string            `json:"volumeAttributesClass,omitempty"`
	} `json:"volumes,omitempty"`
}

type StrimziKafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions int            `json:"partitions,omitempty"`
		Replicas   int            `json:"replicas,omitempty"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}
