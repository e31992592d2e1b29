package cap

import (
	"math"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// Point is a WGS 84 position in decimal degrees.
type Point struct{ Lat, Lon float64 }

// Circle is a centre and a radius in kilometres.
type Circle struct {
	Center   Point
	RadiusKm float64
}

// maxPolygonPoints bounds one polygon; national coastlines in real feeds
// stay well under it, and the containment test is linear in it.
const maxPolygonPoints = 10000

// ParsePolygon parses a CAP polygon: at least four "lat,lon" pairs
// separated by spaces, the first and last the same (closed).
func ParsePolygon(name, v string) ([]Point, error) {
	fields := strings.Fields(v)
	if len(fields) < 4 {
		return nil, loa.Errorf(loa.EINVALID, "%s: %d points; a polygon needs at least 4 \"lat,lon\" pairs, the last equal to the first", name, len(fields))
	}
	if len(fields) > maxPolygonPoints {
		return nil, loa.Errorf(loa.EINVALID, "%s: %d points; at most %d", name, len(fields), maxPolygonPoints)
	}
	pts := make([]Point, len(fields))
	for i, f := range fields {
		p, err := parsePoint(name, f)
		if err != nil {
			return nil, err
		}
		pts[i] = p
	}
	if pts[0] != pts[len(pts)-1] {
		return nil, loa.Errorf(loa.EINVALID, "%s: not closed: the first point %s and the last %s differ", name, fields[0], fields[len(fields)-1])
	}
	return pts, nil
}

// ParseCircle parses a CAP circle: "lat,lon radius" with the radius in
// kilometres.
func ParseCircle(name, v string) (Circle, error) {
	fields := strings.Fields(v)
	if len(fields) != 2 {
		return Circle{}, loa.Errorf(loa.EINVALID, "%s: %q is not \"lat,lon radius-km\"", name, v)
	}
	c, err := parsePoint(name, fields[0])
	if err != nil {
		return Circle{}, err
	}
	r, err := strconv.ParseFloat(fields[1], 64)
	if err != nil || math.IsNaN(r) || r < 0 || r > 20040 { // half the Earth's circumference
		return Circle{}, loa.Errorf(loa.EINVALID, "%s: radius %q is not a distance in km (0–20040)", name, fields[1])
	}
	return Circle{Center: c, RadiusKm: r}, nil
}

func parsePoint(name, s string) (Point, error) {
	la, lo, ok := strings.Cut(s, ",")
	if !ok {
		return Point{}, loa.Errorf(loa.EINVALID, "%s: %q is not \"lat,lon\"", name, s)
	}
	lat, err1 := strconv.ParseFloat(la, 64)
	lon, err2 := strconv.ParseFloat(lo, 64)
	if err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(lon) {
		return Point{}, loa.Errorf(loa.EINVALID, "%s: %q is not \"lat,lon\" in decimal degrees", name, s)
	}
	if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return Point{}, loa.Errorf(loa.EINVALID, "%s: %q is outside -90..90, -180..180", name, s)
	}
	return Point{lat, lon}, nil
}

// InPolygon reports whether p lies inside the closed polygon poly (ray
// casting on the lat/lon plane, which is exact enough at the scale of a
// province; polygons crossing the antimeridian are not handled, none
// cross Vietnam). A point on an edge may fall either side.
func InPolygon(p Point, poly []Point) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) &&
			p.Lon < (b.Lon-a.Lon)*(p.Lat-a.Lat)/(b.Lat-a.Lat)+a.Lon {
			in = !in
		}
	}
	return in
}

// earthRadiusKm is the mean radius of the WGS 84 ellipsoid.
const earthRadiusKm = 6371.0088

// DistanceKm is the great-circle (haversine) distance between a and b.
func DistanceKm(a, b Point) float64 {
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(1, h)))
}

// InCircle reports whether p lies within c.
func InCircle(p Point, c Circle) bool { return DistanceKm(p, c.Center) <= c.RadiusKm }
