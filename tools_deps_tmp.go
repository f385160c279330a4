package main
import (
 _ "github.com/aws/aws-sdk-go-v2/config"
 _ "github.com/aws/aws-sdk-go-v2/service/dynamodb"
 _ "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
 _ "github.com/aws/aws-sdk-go-v2/service/sqs"
 _ "github.com/aws/aws-sdk-go-v2/service/sns"
 _ "github.com/aws/aws-sdk-go-v2/service/s3"
 _ "github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
 _ "github.com/aws/aws-lambda-go/events"
 _ "go.uber.org/zap"
 _ "go.uber.org/goleak"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "gopkg.in/yaml.v3"
 _ "golang.org/x/sync/errgroup"
 _ "github.com/stretchr/testify/require"
)
func main(){}
