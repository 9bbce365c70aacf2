package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Scheme knows every upstream Go type the chart renders: Kubernetes' own, Istio's,
// prometheus-operator's, cert-manager's and the Gateway API's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, istioscheme.AddToScheme, monitoringv1.AddToScheme, certmanagerv1.AddToScheme, gatewayv1.Install,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Decoded is an object decoded into its Go type: a typed upstream object, or for the kinds
// no Go module here ships (SR-IOV, NAD, Strimzi) the typed mirror in crdtypes.go.
type Decoded struct {
	Obj   any
	Typed bool // true: an upstream Go type; false: a mirror in this package
}

// mirrors are the kinds whose upstream Go types are not served by the module proxy this
// project uses; each is decoded strictly into the mirror of its upstream API.
var mirrors = map[schema.GroupVersionKind]func() any{
	{Group: "sriovnetwork.openshift.io", Version: "v1", Kind: "SriovNetworkNodePolicy"}: func() any { return &SriovNetworkNodePolicy{} },
	{Group: "sriovnetwork.openshift.io", Version: "v1", Kind: "SriovNetwork"}:           func() any { return &SriovNetwork{} },
	{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}:      func() any { return &NetworkAttachmentDefinition{} },
	{Group: "kafka.strimzi.io", Version: "v1", Kind: "Kafka"}:                           func() any { return &StrimziKafka{} },
	{Group: "kafka.strimzi.io", Version: "v1", Kind: "KafkaNodePool"}:                   func() any { return &StrimziKafkaNodePool{} },
	{Group: "kafka.strimzi.io", Version: "v1", Kind: "KafkaTopic"}:                      func() any { return &StrimziKafkaTopic{} },
}

// Decoder decodes rendered objects strictly: an unknown or duplicated field is an error.
type Decoder struct {
	scheme *runtime.Scheme
	strict *kjson.Serializer
}

func NewDecoder() (*Decoder, error) {
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	return &Decoder{scheme: s, strict: kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s,
		kjson.SerializerOptions{Yaml: true, Strict: true})}, nil
}

// Decode decodes o into its Go type.
func (d *Decoder) Decode(o Object) (Decoded, error) {
	gvk := o.U.GroupVersionKind()
	if mk, ok := mirrors[gvk]; ok {
		v := mk()
		j, err := o.U.MarshalJSON()
		if err != nil {
			return Decoded{}, err
		}
		if err := strictJSON(j, v); err != nil {
			return Decoded{}, fmt.Errorf("%s: %w", o, err)
		}
		if nad, ok := v.(*NetworkAttachmentDefinition); ok {
			if err := nad.checkConfig(); err != nil {
				return Decoded{}, fmt.Errorf("%s: %w", o, err)
			}
		}
		if val, ok := v.(interface{ Validate() error }); ok {
			if err := val.Validate(); err != nil {
				return Decoded{}, fmt.Errorf("%s: %w", o, err)
			}
		}
		return Decoded{Obj: v}, nil
	}
	if !d.scheme.Recognizes(gvk) {
		return Decoded{}, fmt.Errorf("%s: no Go type for %s: add its module to the scheme or a mirror", o, gvk)
	}
	obj, _, err := d.strict.Decode(o.YAML, nil, nil)
	if err != nil {
		return Decoded{}, fmt.Errorf("%s: %w", o, err)
	}
	if err := istioSpecStrict(o, obj); err != nil {
		return Decoded{}, err
	}
	return Decoded{Obj: obj, Typed: true}, nil
}

// istioSpecStrict: Istio's client-go types unmarshal their spec with a JSON decoder that
// ignores unknown fields, so the strict serializer cannot see a typo there. Decode the spec
// again with protojson into the istio.io/api message, which rejects unknown fields.
func istioSpecStrict(o Object, obj runtime.Object) error {
	if g := o.U.GroupVersionKind().Group; g != "security.istio.io" && g != "networking.istio.io" {
		return nil
	}
	spec := reflect.ValueOf(obj).Elem().FieldByName("Spec")
	if !spec.IsValid() || !spec.CanAddr() {
		return fmt.Errorf("%s: Istio type without a Spec field", o)
	}
	msg, ok := spec.Addr().Interface().(proto.Message)
	if !ok {
		return fmt.Errorf("%s: Istio spec %T is not a protobuf message", o, spec.Addr().Interface())
	}
	raw, ok := o.U.Object["spec"]
	if !ok {
		return nil
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	fresh := msg.ProtoReflect().New().Interface()
	if err := (protojson.UnmarshalOptions{}).Unmarshal(j, fresh); err != nil {
		return fmt.Errorf("%s: spec: %w", o, err)
	}
	return nil
}

// strictJSON decodes JSON into v, refusing unknown fields and trailing data.
func strictJSON(j []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}
