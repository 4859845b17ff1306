package fragment

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type (
	slug     string
	userID   int64
	ratio    float32
	flag     bool
	sku      struct{ n int }
	skuPtr   struct{ n int }
	skuValue struct{ n int }
)

func (s sku) String() string { return "sku-" + strconv.Itoa(s.n) }

// String has a pointer receiver that copes with nil, as some Stringers do.
func (s *skuPtr) String() string {
	if s == nil {
		return "no-sku"
	}
	return "skuptr-" + strconv.Itoa(s.n)
}

// String has a value receiver: calling it through a nil *skuValue panics.
func (s skuValue) String() string { return "skuvalue-" + strconv.Itoa(s.n) }

func TestAppendKeyValueTextForms(t *testing.T) {
	n := 42
	s := "en"
	pn := &n
	var nilInt *int
	var nilSkuValue *skuValue
	var nilSkuPtr *skuPtr
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"string as is", "user_7", "user_7"},
		{"empty string", "", ""},
		{"bytes as is", []byte("raw"), "raw"},
		{"int", -12, strconv.Itoa(-12)},
		{"int8", int8(math.MinInt8), strconv.FormatInt(math.MinInt8, 10)},
		{"int16", int16(math.MaxInt16), strconv.FormatInt(math.MaxInt16, 10)},
		{"int32", int32(math.MinInt32), strconv.FormatInt(math.MinInt32, 10)},
		{"int64", int64(math.MaxInt64), strconv.FormatInt(math.MaxInt64, 10)},
		{"uint", uint(7), "7"},
		{"uint8", uint8(math.MaxUint8), strconv.FormatUint(math.MaxUint8, 10)},
		{"uint16", uint16(math.MaxUint16), strconv.FormatUint(math.MaxUint16, 10)},
		{"uint32", uint32(math.MaxUint32), strconv.FormatUint(math.MaxUint32, 10)},
		{"uint64", uint64(math.MaxUint64), strconv.FormatUint(math.MaxUint64, 10)},
		{"uintptr", uintptr(99), "99"},
		{"float64 shortest", 0.1, strconv.FormatFloat(0.1, 'g', -1, 64)},
		{"float64 integral", 2.0, "2"},
		{"float64 large uses exponent", 1e21, strconv.FormatFloat(1e21, 'g', -1, 64)},
		{"float32 shortest at 32 bits", float32(0.1), strconv.FormatFloat(float64(float32(0.1)), 'g', -1, 32)},
		{"true", true, "true"},
		{"false", false, "false"},
		{"nil is Flask's None", nil, "None"},
		{"Stringer", sku{3}, sku{3}.String()},
		{"pointer to Stringer", &skuPtr{4}, (&skuPtr{4}).String()},
		{"pointer to int followed", pn, strconv.Itoa(n)},
		{"pointer to string followed", &s, s},
		{"pointer to pointer followed", &pn, strconv.Itoa(n)},
		{"nil pointer is None", nilInt, "None"},
		{"nil pointer to value-receiver Stringer is None", nilSkuValue, "None"},
		{"nil pointer to pointer-receiver Stringer is None", nilSkuPtr, "None"},
		{"named string", slug("red-shoes"), "red-shoes"},
		{"named int", userID(-5), "-5"},
		{"named float32", ratio(0.25), "0.25"},
		{"named bool", flag(true), "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendKeyValue([]byte("k_"), tt.v)
			require.NoError(t, err)
			assert.Equal(t, "k_"+tt.want, string(got), "the value is appended after what b held")
		})
	}
}

func TestAppendKeyValueRejectsValuesWithoutStableText(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		typeName string
	}{
		{"struct", struct{ ID int }{1}, "struct { ID int }"},
		{"map", map[string]int{"a": 1}, "map[string]int"},
		{"slice of ints", []int{1, 2}, "[]int"},
		{"slice of strings", []string{"a"}, "[]string"},
		{"pointer to struct", &struct{ ID int }{1}, "struct { ID int }"},
		{"complex", complex(1, 2), "complex128"},
		{"func", func() {}, "func()"},
		{"channel", make(chan int), "chan int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendKeyValue([]byte("k_"), tt.v)
			require.ErrorIs(t, err, ErrKeyValue)
			assert.Contains(t, err.Error(), tt.typeName, "the error names the type")
			assert.Equal(t, "k_", string(got), "nothing is appended on error")
		})
	}
}
